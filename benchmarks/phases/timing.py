"""Time the two phases directly on pdsim's own model runner and KV store: each prefill forward, each decode step.

The engine is the thing measured: the same `HfModelRunner` (pdsim's in-place attention, greedy sampling of each
row's last token) and `SlotKvStore` a node runs. Every timer is closed only after the device has finished
(`synchronize`), so the figures hold on cuda and mps, where kernels run asynchronously.

Sweep points time steps at a fixed shape: a decode point re-runs the step at the same position, so every timed
step attends over exactly `context + 1` keys (the cache's contents do not change the work). The headline run is
a real generation: one batched prefill, then decode steps over a growing context, each timed.
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.phases.peaks import timed
from benchmarks.phases.points import Headline, Point, cost_point, generation_point
from pdsim.core.emulation.costs import decode_cost, prefill_cost
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.requests import SamplingParams
from pdsim.engine.model_runner import HfModelRunner
from pdsim.engine.step import DecodeRow, PrefillRow, SamplingRow, StepInput

# Every benchmark samples greedily: the cheapest sampling, so the timings are the model's.
GREEDY = SamplingRow(SamplingParams(), seed=0, index=0)


class PhaseTimer:
    def __init__(self, runner: HfModelRunner, shape: ModelShape, seed: int = 0) -> None:
        self.runner = runner
        self.shape = shape
        self.dtype = runner.kv.layout.dtype  # the KV store's dtype is the model's
        self._device = runner.kv.keys[0].device
        self._tokens = torch.Generator().manual_seed(seed)

    def prefill_point(self, batch: int, length: int, repeats: int) -> Point:
        """The median of `repeats` prefills of `batch` prompts of `length` tokens (after one warm-up)."""
        times = [self._prefill(batch, length)[1] for _ in range(repeats + 1)][1:]
        return cost_point(
            "prefill",
            batch,
            length,
            repeats,
            statistics.median(times),
            batch * length,
            prefill_cost(self.shape, batch, length, self.dtype),
        )

    def decode_point(self, batch: int, context: int, steps: int, warmup: int) -> Point:
        """The median of `steps` decode steps of `batch` rows, each attending over `context + 1` keys."""
        self._check_fits(batch, context + 1)
        rows = [DecodeRow(1, context, GREEDY) for _ in range(batch)]
        times = [self._timed_decode(rows)[1] for _ in range(warmup + steps)][warmup:]
        return cost_point(
            "decode",
            batch,
            context,
            steps,
            statistics.median(times),
            batch,
            decode_cost(self.shape, batch, context, self.dtype),
        )

    def headline(self, requests: int, input_tokens: int, output_tokens: int) -> Headline:
        """One prefill of all prompts together, then `output_tokens - 1` decode steps (the prefill samples token 1)."""
        self._check_fits(requests, input_tokens + output_tokens)
        # Warm-up at the same shapes: the first forward of a shape pays one-off set-up costs (kernel selection,
        # allocator growth) that a serving engine has long paid. Measured here: 10 x 256 ran at half speed cold.
        warm, _ = self._prefill(requests, input_tokens)
        self._timed_decode([DecodeRow(t, input_tokens, GREEDY) for t in warm])
        tokens, prefill_seconds = self._prefill(requests, input_tokens)
        steps: list[Point] = []
        for step in range(output_tokens - 1):
            context = input_tokens + step
            tokens, seconds = self._timed_decode([DecodeRow(t, context, GREEDY) for t in tokens])
            cost = decode_cost(self.shape, requests, context, self.dtype)
            steps.append(cost_point("decode", requests, context, 1, seconds, requests, cost))
        prefill = cost_point(
            "prefill",
            requests,
            input_tokens,
            1,
            prefill_seconds,
            requests * input_tokens,
            prefill_cost(self.shape, requests, input_tokens, self.dtype),
        )
        return Headline(prefill, generation_point(steps), tuple(p.seconds for p in steps))

    def _prefill(self, batch: int, length: int) -> tuple[list[int], float]:
        self._check_fits(batch, length)
        prompts = torch.randint(0, self.shape.vocab, (batch, length), generator=self._tokens).tolist()
        rows = [PrefillRow(slot, prompt, GREEDY) for slot, prompt in enumerate(prompts)]
        return timed(lambda: self.runner.run(StepInput.prefill(rows)).tokens, self._device)

    def _timed_decode(self, rows: list[DecodeRow]) -> tuple[list[int], float]:
        return timed(lambda: self.runner.run(StepInput.decode(rows)).tokens, self._device)

    def _check_fits(self, batch: int, tokens: int) -> None:
        kv = self.runner.kv
        if batch > kv.num_slots or tokens > kv.max_tokens:
            raise ValueError(
                f"{batch} rows of {tokens} tokens do not fit a KV store of "
                f"{kv.num_slots} slots x {kv.max_tokens} tokens"
            )
