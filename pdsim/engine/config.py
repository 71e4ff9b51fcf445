"""Engine configuration: batch limits, token budgets, scheduling policy, KV staging and lease."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SchedulePolicy(Enum):
    # Waiting prompts are prefilled as soon as a slot is free; running decodes wait for the prefill.
    PREFILL_FIRST = "prefill-first"
    # Waiting prompts are prefilled only when nothing is decoding: decodes never stall behind a prefill,
    # at the cost of time to first token.
    DECODE_FIRST = "decode-first"
    # Every step runs all decodes plus the next chunk of waiting prompts in one forward, within
    # `step_token_budget` tokens: a long prompt never stalls the decodes for longer than one step.
    CHUNKED = "chunked"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_batch: int = 16  # KV slots: requests that can hold KV at once (and so the largest decode batch)
    # Prompt tokens one prefill step may compute, packed with no padding; a prefill node chunks a prompt that
    # does not fit what is left, and the colocated prefill-first/decode-first policies run one over it alone.
    prefill_token_budget: int = 4096
    policy: SchedulePolicy = SchedulePolicy.CHUNKED  # colocated only
    # chunked: tokens one step computes, decodes first (one each), prompt chunks in the rest. Measured with
    # `python -m benchmarks.phases.mixed` (small, bf16, one thread, decodes at context 512), budgets 64/128/256/
    # 512/1024 took 61/84/136/278/576 ms per step with 8 decodes (decode alone 49 ms) and 106/118/174/304/606 ms
    # with 16 (alone 85 ms), the chunk adding 3.2/3.4/2.8/2.2/1.9k prompt tok/s (8) and 2.4/3.3/2.7/2.2/1.9k (16).
    # 128 bounds a step at ~1.4-1.7x a plain decode step and gives the most prefill throughput: larger chunks are
    # slower per token here (attention within a chunk grows with its square), so they lose on both counts.
    step_token_budget: int = 128
    max_waiting: int = 1024  # queued requests beyond this are refused with RESOURCE_EXHAUSTED
    kv_lease_seconds: float = 30.0  # decode: KV whose push started this long ago and no Decode claimed is freed
    # decode: a push that sends nothing for this long is dropped and its staging freed (a stalled or hung sender);
    # frames of a healthy push arrive milliseconds apart, even at 4 MiB each.
    kv_push_stall_seconds: float = 5.0
    staging_tokens: int | None = None  # decode: KV tokens that may wait for a Decode; default 4 contexts

    def __post_init__(self) -> None:
        if self.max_batch <= 0:
            raise ValueError(f"max_batch must be > 0, got {self.max_batch}")
        if self.prefill_token_budget <= 0:
            raise ValueError(f"prefill_token_budget must be > 0, got {self.prefill_token_budget}")
        if self.step_token_budget <= 0:
            raise ValueError(f"step_token_budget must be > 0, got {self.step_token_budget}")
        if self.max_waiting <= 0:
            raise ValueError(f"max_waiting must be > 0, got {self.max_waiting}")
        if self.kv_lease_seconds <= 0:
            raise ValueError(f"kv_lease_seconds must be > 0, got {self.kv_lease_seconds}")
        if self.kv_push_stall_seconds <= 0:
            raise ValueError(f"kv_push_stall_seconds must be > 0, got {self.kv_push_stall_seconds}")
        if self.staging_tokens is not None and self.staging_tokens <= 0:
            raise ValueError(f"staging_tokens must be > 0, got {self.staging_tokens}")
