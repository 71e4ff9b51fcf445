"""The model runner's interface, in plain data: what one step computes and what it returns, and what the
schedulers need of a KV store. Torch-free, so an emulated node (`pdsim.engine.emulated`) runs the same engine,
schedulers and KV protocol without loading torch; `pdsim.engine.model_runner` runs the real model behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pdsim.core.emulation.costs import Segment
from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import SamplingParams, TokenLogprobs

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class SamplingRow:
    params: SamplingParams
    seed: int  # the request's seed (drawn at random by the node when the client gave none)
    index: int  # which output token this is: 0 for the first


@dataclass(frozen=True, slots=True)
class TokenRules:
    """The model's facts that sampling obeys."""

    suppress: frozenset[int] = frozenset()  # never sampled
    eos: frozenset[int] = frozenset()  # not sampled before a request's min_tokens


NO_RULES = TokenRules()


def mix_seed(seed: int, index: int) -> int:
    """splitmix64 of (seed, index): nearby seeds and indices give unrelated 63-bit numbers."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


@dataclass(frozen=True, slots=True)
class PrefillRow:
    """Prompt tokens at positions `start..` of the request in `slot` (its first `start` are in the slot)."""

    slot: int
    prompt_ids: Sequence[int]
    sampling: SamplingRow | None  # None: the prompt goes on in a later step, so no token is sampled yet
    start: int = 0


@dataclass(frozen=True, slots=True)
class DecodeRow:
    input_token: int
    position: int  # the input token's position = tokens already in the slot
    sampling: SamplingRow


@dataclass(frozen=True, slots=True)
class StepInput:
    decodes: Sequence[DecodeRow] = ()  # row b lives in slot b
    chunks: Sequence[PrefillRow] = ()

    @classmethod
    def prefill(cls, rows: Sequence[PrefillRow]) -> StepInput:
        return cls(chunks=rows)

    @classmethod
    def decode(cls, rows: Sequence[DecodeRow]) -> StepInput:
        return cls(decodes=rows)

    def segments(self) -> tuple[Segment, ...]:
        """The step's work as new tokens on tokens already cached, per row: what the cost model counts."""
        return (*(Segment(1, row.position) for row in self.decodes),
                *(Segment(len(c.prompt_ids), c.start) for c in self.chunks))  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepOutput:
    """One token per sampled row; `logprobs` (same order) only when some row asked for them."""

    tokens: list[int]
    logprobs: Sequence[TokenLogprobs | None] | None = None
    modeled_seconds: float | None = None  # an emulated runner's: the cost model's time for the step

    def row_logprobs(self) -> Sequence[TokenLogprobs | None]:
        """One entry per token: None where its row did not ask (every row, when none did)."""
        return self.logprobs if self.logprobs is not None else [None] * len(self.tokens)


class StagedKv(Protocol):
    """KV received for a request before it joins a batch (see `pdsim.kv.staging`): `num_tokens` tokens of
    `layout`, as `[layers, 2, kv_heads, tokens, head_dim]` bytes."""

    @property
    def num_tokens(self) -> int: ...

    @property
    def layout(self) -> KvLayout: ...

    @property
    def buffer(self) -> memoryview: ...

    def release(self) -> None: ...


class KvStore(Protocol):
    """What the schedulers, the running batch and the KV sender need of a store of `num_slots` slots of
    `max_tokens` tokens each: the real one holds tensors (`pdsim.engine.kv_store`), an emulated one only counts."""

    layout: KvLayout  # the model's: what a token of KV costs in memory
    num_slots: int
    max_tokens: int

    @property
    def capacity_bytes(self) -> int: ...

    @property
    def capacity_tokens(self) -> int:
        """Tokens the store can hold at once across all slots."""
        ...

    @property
    def wire_layout(self) -> KvLayout:
        """The layout of the bytes a push carries (the model's, or an emulated store's stand-in)."""
        ...

    def move(self, src: int, dst: int, num_tokens: int) -> None:
        """Copy a request's first `num_tokens` tokens from slot `src` to slot `dst`."""

    def host_segments(self, slot: int, layer: int, num_tokens: int) -> list[memoryview]:
        """One layer of a slot (of `wire_layout`) as its 2 x kv_heads `[tokens, head_dim]` blocks, keys first."""
        ...

    def write_staged(self, slot: int, staged: StagedKv) -> None:
        """Copy KV received from a prefill node into a slot."""


class ModelRunner(Protocol):
    @property
    def kv(self) -> KvStore: ...

    def run(self, step: StepInput) -> StepOutput:
        """Write every new token's KV into its slot; return one token per decode row, then one per chunk
        that has `sampling` (the chunk that ends its prompt)."""
        ...
