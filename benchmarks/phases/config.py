"""The phase benchmark's settings: one frozen dataclass, validated here; the CLI reads its defaults from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pdsim.models.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class PhasesConfig:
    # The seed's defaults: the `small` preset in bf16, where a CPU shows the textbook memory-bound decode.
    model: ModelSpec = field(default_factory=lambda: ModelSpec("small", "cpu", "bfloat16"))
    # The headline: N concurrent requests of input/output tokens, as in the seed (10 x 256/256).
    requests: int = 10
    input_tokens: int = 256
    output_tokens: int = 256
    # The decode sweep: every batch size at every context length.
    batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    contexts: tuple[int, ...] = (16, 128, 512, 2048)  # 16: the KV is negligible, intensity ~ batch
    steps: int = 8  # timed decode steps per point (after `warmup` untimed ones)
    warmup: int = 2
    # The prefill sweep: every batch at every prompt length.
    prefill_batches: tuple[int, ...] = (1, 4, 16)
    prefill_lengths: tuple[int, ...] = (32, 128, 512)
    repeats: int = 3  # timed prefills per point; the median counts
    # The mixed-step sweep: B decodes at `mixed_context` plus a C-token prompt chunk, in one forward vs two.
    mixed_decodes: tuple[int, ...] = (8, 16)
    mixed_chunks: tuple[int, ...] = (64, 256, 1024)
    mixed_context: int = 512
    # On a CPU, one pdsim node gets one core and one torch thread (`pdsim.engine.build.pin_cpus`): the same here,
    # so the figures are what one CPU "device" of a pdsim cluster delivers. Ignored by GPUs.
    threads: int = 1
    matmul_size: int = 2048  # the compute roof: an n x n matmul
    copy_mib: int = 256  # the memory roof: copying this much (far larger than any cache)
    output: Path = Path("results/phases")
    emulate: str | None = None  # emulated:<profile>: predict every point with the cost model instead of measuring

    def __post_init__(self) -> None:
        for name in ("requests", "input_tokens", "steps", "repeats", "threads", "matmul_size", "copy_mib"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.output_tokens < 2:
            raise ValueError(f"output_tokens must be >= 2 (token 1 comes from the prefill), got {self.output_tokens}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        for name in ("batches", "prefill_batches", "prefill_lengths", "mixed_decodes", "mixed_chunks"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ValueError(f"{name} must be one or more numbers > 0, got {values}")
        if self.mixed_context < 0:
            raise ValueError(f"mixed_context must be >= 0, got {self.mixed_context}")
        if not self.contexts or min(self.contexts) < 0:
            raise ValueError(f"contexts must be one or more numbers >= 0, got {self.contexts}")

    @property
    def kv_slots(self) -> int:
        return max(self.requests, *self.batches, *self.prefill_batches, max(self.mixed_decodes) + 1)

    @property
    def kv_tokens(self) -> int:
        return max(
            self.input_tokens + self.output_tokens,
            max(self.contexts) + 1,
            *self.prefill_lengths,
            self.mixed_context + 1,
            *self.mixed_chunks,
        )
