"""The model runner: the only part of the engine that runs the model.

Its interface (`pdsim.engine.step`) is one method, `run(StepInput)`: compute a step's prompt chunks into their
slots and append one token to each running decode, and return the tokens sampled. `HfModelRunner` runs a real
model on torch; `pdsim.engine.emulated` sleeps for a cost model's time behind the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pdsim.engine.attention import KvStep, Segment
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.sampler import sample, token_logprobs
from pdsim.engine.step import NO_RULES, DecodeRow, SamplingRow, StepInput, StepOutput, TokenRules


class HfModelRunner:
    """Runs a Hugging Face causal LM loaded with `attn_implementation="pdsim"`."""

    def __init__(self, model: torch.nn.Module, kv: SlotKvStore, rules: TokenRules = NO_RULES) -> None:
        self.kv = kv
        self._rules = rules
        self._device = next(model.parameters()).device
        self._body: torch.nn.Module = model.base_model  # type: ignore[assignment]
        self._head: torch.nn.Module = model.get_output_embeddings()  # type: ignore[operator]

    @torch.inference_mode()
    def run(self, step: StepInput) -> StepOutput:
        if not step.chunks:
            return self._decode(step.decodes)
        return self._packed(step)

    def _decode(self, rows: Sequence[DecodeRow]) -> StepOutput:
        """A decode-only step keeps the `[B, 1]` layout: one token per row, nothing to pack."""
        step = self._decode_step(rows)
        ids = torch.tensor([[r.input_token] for r in rows], dtype=torch.long)
        hidden = self._forward(ids, torch.tensor([[r.position] for r in rows]), step)
        return self._sample(self._head(hidden[:, -1]), [r.sampling for r in rows])

    def _packed(self, step: StepInput) -> StepOutput:
        """Decode rows and prompt chunks as one `[1, tokens]` sequence with no padding."""
        ids = [r.input_token for r in step.decodes]
        positions = [r.position for r in step.decodes]
        segments: list[Segment] = []
        sampled = list(range(len(ids)))  # where each sampled token's hidden state sits
        for chunk in step.chunks:
            offset, length = len(ids), len(chunk.prompt_ids)
            ids.extend(chunk.prompt_ids)
            positions.extend(range(chunk.start, chunk.start + length))
            segments.append(Segment(chunk.slot, chunk.start, offset, length, self._prefix_mask(chunk.start, length)))
            if chunk.sampling is not None:
                sampled.append(offset + length - 1)
        base = self._decode_step(step.decodes) if step.decodes else KvStep(self.kv)
        kv_step = KvStep(self.kv, base.decodes, base.positions, base.kv_len, base.mask, tuple(segments))
        hidden = self._forward(torch.tensor([ids]), torch.tensor([positions]), kv_step)
        rows = [r.sampling for r in step.decodes] + [c.sampling for c in step.chunks if c.sampling is not None]
        return self._sample(self._head(hidden[0, self._tensor(sampled)]), rows)

    def _sample(self, logits: torch.Tensor, rows: Sequence[SamplingRow]) -> StepOutput:
        tokens = sample(logits, rows, self._rules)
        return StepOutput(tokens, token_logprobs(logits, rows, tokens, self._rules))

    def _decode_step(self, rows: Sequence[DecodeRow]) -> KvStep:
        row_positions = [r.position for r in rows]
        positions = self._tensor(row_positions)
        kv_len = max(row_positions) + 1
        mask = None
        if min(row_positions) + 1 != kv_len:  # rows of different lengths: hide each row's tail
            mask = (torch.arange(kv_len, device=self._device)[None, :] <= positions[:, None])[:, None, None, :]
        return KvStep(self.kv, len(rows), positions, kv_len, mask)

    def _prefix_mask(self, start: int, length: int) -> torch.Tensor | None:
        """A later chunk's token i (position start + i) sees keys 0..start + i: its prefix and itself causally."""
        if start == 0:
            return None
        keys = torch.arange(start + length, device=self._device)
        return keys[None, :] <= torch.arange(start, start + length, device=self._device)[:, None]

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
