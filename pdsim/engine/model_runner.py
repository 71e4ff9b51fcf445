"""The model runner: the only part of the engine that runs the model.

Its interface is what the schedulers call: prefill a batch (KV goes into each row's slot, first tokens come
back) and decode a batch (rows in slots 0..B-1, one new token each). A later emulated runner takes its step
times from a cost model behind the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from pdsim.engine.attention import KvStep
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.sampler import NO_RULES, SamplingRow, TokenRules, sample


@dataclass(frozen=True, slots=True)
class PrefillRow:
    slot: int
    prompt_ids: Sequence[int]
    sampling: SamplingRow


@dataclass(frozen=True, slots=True)
class DecodeRow:
    input_token: int
    position: int  # the input token's position = tokens already in the slot
    sampling: SamplingRow


class ModelRunner(Protocol):
    kv: SlotKvStore

    def prefill(self, rows: Sequence[PrefillRow]) -> list[int]:
        """Compute each prompt's KV into its slot; return each row's first token."""
        ...

    def decode(self, rows: Sequence[DecodeRow]) -> list[int]:
        """Row b lives in slot b. Append each input token's KV; return each row's next token."""
        ...


class HfModelRunner:
    """Runs a Hugging Face causal LM loaded with `attn_implementation="pdsim"`."""

    def __init__(
        self, model: torch.nn.Module, kv: SlotKvStore, pad_token_id: int = 0, rules: TokenRules = NO_RULES
    ) -> None:
        self.kv = kv
        self._rules = rules
        self._device = next(model.parameters()).device
        self._body: torch.nn.Module = model.base_model  # type: ignore[assignment]
        self._head: torch.nn.Module = model.get_output_embeddings()  # type: ignore[operator]
        self._pad = pad_token_id

    @torch.inference_mode()
    def prefill(self, rows: Sequence[PrefillRow]) -> list[int]:
        lengths = [len(r.prompt_ids) for r in rows]
        width = max(lengths)
        ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
        for b, row in enumerate(rows):
            ids[b, : lengths[b]] = torch.as_tensor(row.prompt_ids, dtype=torch.long)
        positions = torch.arange(width).expand(len(rows), width)
        step = KvStep(self.kv, decode=False, slots=self._tensor([r.slot for r in rows]))
        hidden = self._forward(ids, positions, step)
        last = hidden[torch.arange(len(rows), device=self._device), self._tensor([n - 1 for n in lengths])]
        return sample(self._head(last), [r.sampling for r in rows], self._rules)

    @torch.inference_mode()
    def decode(self, rows: Sequence[DecodeRow]) -> list[int]:
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
        return sample(self._head(hidden[:, -1]), [r.sampling for r in rows], self._rules)

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
