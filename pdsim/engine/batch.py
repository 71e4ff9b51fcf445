"""One step's work as a scheduler hands it over: the running decodes and the prompt chunks to compute.

A batch knows its own token counts; `step_input()` turns it into the runner's plain rows, so the runner never
sees a `Request`. The runner returns one token per decode row, then one per chunk that ends its prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pdsim.engine.request import Phase, Request
from pdsim.engine.step import DecodeRow, PrefillRow, SamplingRow, StepInput


@dataclass(frozen=True, slots=True)
class Chunk:
    """Prompt tokens `[start, start + length)` of a request whose earlier tokens are already in its slot."""

    request: Request
    start: int
    length: int

    @property
    def last(self) -> bool:
        """The chunk ends the prompt: its step samples the request's first token."""
        return self.start + self.length == self.request.prompt_len


@dataclass(frozen=True, slots=True)
class Batch:
    decodes: Sequence[Request] = ()  # each in slot i of the running batch, one new token each
    chunks: Sequence[Chunk] = ()

    def __post_init__(self) -> None:
        assert self.decodes or self.chunks, "an empty batch"

    @classmethod
    def prefill(cls, requests: Sequence[Request]) -> Batch:
        """Whole prompts, one chunk each."""
        return cls(chunks=[Chunk(r, 0, r.prompt_len) for r in requests])

    @property
    def phase(self) -> Phase:
        if not self.chunks:
            return Phase.DECODE
        return Phase.MIXED if self.decodes else Phase.PREFILL

    @property
    def requests(self) -> list[Request]:
        return [*self.decodes, *(c.request for c in self.chunks)]

    @property
    def sampled(self) -> list[Request]:
        """The requests that get a token from this step, in the runner's order."""
        return [*self.decodes, *(c.request for c in self.chunks if c.last)]

    @property
    def prefill_tokens(self) -> int:
        return sum(c.length for c in self.chunks)

    @property
    def decode_tokens(self) -> int:
        return len(self.decodes)

    @property
    def padded_tokens(self) -> int:
        """Tokens the model runs: prompts are packed without padding, so every token is real."""
        return self.prefill_tokens + self.decode_tokens

    def step_input(self) -> StepInput:
        decodes = [
            DecodeRow(r.output_ids[-1], r.num_cached, SamplingRow(r.params, r.seed, len(r.output_ids)))
            for r in self.decodes
        ]
        chunks = [
            PrefillRow(
                c.request.slot,
                c.request.prompt_ids[c.start : c.start + c.length],
                SamplingRow(c.request.params, c.request.seed, 0) if c.last else None,
                c.start,
            )
            for c in self.chunks
        ]
        return StepInput(decodes, chunks)
