"""The model runner: the only part of the engine that runs the model.

Its interface is one method, `run(StepInput)`: compute a step's prompt chunks into their slots and append one
token to each running decode, and return the tokens sampled. Its types are plain data (no torch), so a later
emulated runner that sleeps for a cost-model time fits behind the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from pdsim.engine.attention import KvStep
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.sampler import SamplingRow, sample


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


class ModelRunner(Protocol):
    kv: SlotKvStore

    def run(self, step: StepInput) -> list[int]:
        """Write every new token's KV into its slot; return one token per decode row, then one per chunk
        that has `sampling` (the chunk that ends its prompt)."""
        ...


class HfModelRunner:
    """Runs a Hugging Face causal LM loaded with `attn_implementation="pdsim"`."""

    def __init__(self, model: torch.nn.Module, kv: SlotKvStore, pad_token_id: int = 0) -> None:
        self.kv = kv
        self._device = next(model.parameters()).device
        self._body: torch.nn.Module = model.base_model  # type: ignore[assignment]
        self._head: torch.nn.Module = model.get_output_embeddings()  # type: ignore[operator]
        self._pad = pad_token_id

    @torch.inference_mode()
    def run(self, step: StepInput) -> list[int]:
        if step.decodes and step.chunks:
            raise NotImplementedError("a step mixing decodes and prompt chunks")
        if step.chunks:
            return self._prefill(step.chunks)
        return self._decode(step.decodes)

    def _prefill(self, rows: Sequence[PrefillRow]) -> list[int]:
        assert all(r.start == 0 and r.sampling is not None for r in rows), "whole prompts only"
        lengths = [len(r.prompt_ids) for r in rows]
        width = max(lengths)
        ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
        for b, row in enumerate(rows):
            ids[b, : lengths[b]] = torch.as_tensor(row.prompt_ids, dtype=torch.long)
        positions = torch.arange(width).expand(len(rows), width)
        step = KvStep(self.kv, decode=False, slots=self._tensor([r.slot for r in rows]))
        hidden = self._forward(ids, positions, step)
        last = hidden[torch.arange(len(rows), device=self._device), self._tensor([n - 1 for n in lengths])]
        return sample(self._head(last), [r.sampling for r in rows if r.sampling is not None])

    def _decode(self, rows: Sequence[DecodeRow]) -> list[int]:
        row_positions = [r.position for r in rows]
        positions = self._tensor(row_positions)
        kv_len = max(row_positions) + 1
        mask = None
        if min(row_positions) + 1 != kv_len:  # rows of different lengths: hide each row's tail
            mask = (torch.arange(kv_len, device=self._device)[None, :] <= positions[:, None])[:, None, None, :]
        step = KvStep(
            self.kv,
            decode=True,
            slots=torch.arange(len(rows), device=self._device),
            positions=positions,
            kv_len=kv_len,
            mask=mask,
        )
        ids = torch.tensor([[r.input_token] for r in rows], dtype=torch.long)
        hidden = self._forward(ids, positions[:, None], step)
        return sample(self._head(hidden[:, -1]), [r.sampling for r in rows])

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor, step: KvStep) -> torch.Tensor:
        out = self._body(
            input_ids=ids.to(self._device),
            position_ids=positions.to(self._device),
            use_cache=False,
            pdsim_step=step,
        )
        return out.last_hidden_state  # type: ignore[no-any-return]

    def _tensor(self, values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=self._device)
