"""What `pdsim calibrate` measures: the model, the device, and the step shapes it fits on and checks against.

The default shapes cover what a pdsim node runs on this CPU: prefills of one to eight prompts of 32-1,024 tokens,
decode batches of 1-32 at contexts of 16-2,048, and chunked steps (decodes plus a prompt chunk). The held-out
shapes lie inside those ranges but are never fitted on: their errors say how well the profile predicts steps it
has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pdsim.models.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Shape:
    """One step: `prefills` prompts of `length` tokens, `decodes` rows at `context`, or both (a chunked step)."""

    prefills: int = 0
    length: int = 0
    decodes: int = 0
    context: int = 0

    def __post_init__(self) -> None:
        if self.prefills < 0 or self.decodes < 0 or (self.prefills and self.length <= 0):
            raise ValueError(f"a step needs prompts of > 0 tokens or decodes, got {self}")
        if not self.prefills and not self.decodes:
            raise ValueError("a step needs at least one prompt or one decode")

    @property
    def name(self) -> str:
        parts = [f"{self.decodes} decodes @{self.context}"] if self.decodes else []
        parts += [f"{self.prefills} x {self.length} prompt"] if self.prefills else []
        return " + ".join(parts)


def _prefill(batch: int, length: int) -> Shape:
    return Shape(prefills=batch, length=length)


def _decode(batch: int, context: int) -> Shape:
    return Shape(decodes=batch, context=context)


TRAIN = (
    *(_prefill(b, n) for b, n in ((1, 32), (1, 128), (1, 512), (1, 1024), (4, 128), (4, 512), (8, 64))),
    *(_decode(b, c) for b, c in ((1, 16), (1, 1024), (4, 256), (8, 16), (8, 1024), (16, 512), (32, 128), (32, 2048))),
    Shape(prefills=1, length=128, decodes=8, context=512),
    Shape(prefills=1, length=64, decodes=16, context=512),
)
HELD_OUT = (
    *(_prefill(b, n) for b, n in ((2, 256), (1, 768), (8, 128))),
    *(_decode(b, c) for b, c in ((2, 512), (12, 256), (24, 1536), (4, 2048))),
    Shape(prefills=1, length=256, decodes=8, context=512),
    Shape(prefills=1, length=128, decodes=12, context=256),
)
# For tests on the tiny preset: seconds, not minutes.
QUICK_TRAIN = (
    *(_prefill(b, n) for b, n in ((1, 16), (1, 64), (4, 32))),
    *(_decode(b, c) for b, c in ((1, 8), (4, 64), (8, 16))),
)
QUICK_HELD_OUT = (_prefill(2, 32), _decode(2, 32))


@dataclass(frozen=True, slots=True)
class CalibrateConfig:
    model: ModelSpec = field(default_factory=lambda: ModelSpec("small", "cpu", "bfloat16"))
    threads: int = 1  # one pdsim CPU node = one core and one torch thread (`pdsim.engine.build.pin_cpus`)
    train: tuple[Shape, ...] = TRAIN
    held_out: tuple[Shape, ...] = HELD_OUT
    repeats: int = 5  # timed runs per shape, after one warm-up; the median counts
    matmul_size: int = 2048  # the compute roof: an n x n matmul per dtype
    copy_mib: int = 256  # the memory roof
    output: Path | None = None  # default: results/calibrate/<device>-<model>.toml

    def __post_init__(self) -> None:
        if self.model.emulated_profile is not None:
            raise ValueError(f"calibrate measures a real device, not {self.model.device}")
        for name in ("threads", "repeats", "matmul_size", "copy_mib"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if len(self.train) < 5:
            raise ValueError(f"fitting needs at least 5 training shapes, got {len(self.train)}")

    @property
    def output_path(self) -> Path:
        device = self.model.device.replace(":", "")
        model = Path(self.model.model).name
        return self.output or Path("results/calibrate") / f"{device}-{model}-{self.model.dtype}.toml"

    @property
    def slots(self) -> int:
        return max(s.prefills + s.decodes for s in (*self.train, *self.held_out))

    @property
    def tokens(self) -> int:
        return max(max(s.length, s.context + 1) for s in (*self.train, *self.held_out))
