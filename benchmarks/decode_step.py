"""Decode step time: pdsim's engine step (slot KV store, written in place) against a bare transformers
forward over a DynamicCache of the same shapes (which concatenates every step).

    python -m benchmarks.decode_step [--model small] [--dtype float32] [--context 256] [--batches 1,8,32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from transformers import AutoModelForCausalLM, DynamicCache

from benchmarks.phases.timing import GREEDY
from pdsim.engine.build import build_runner, load_engine_model
from pdsim.engine.model_runner import HfModelRunner
from pdsim.engine.step import DecodeRow, PrefillRow, StepInput
from pdsim.models.dtypes import torch_dtype
from pdsim.models.loading import resolve_model_path
from pdsim.models.spec import ModelSpec


def time_ours(runner: HfModelRunner, batch: int, context: int, steps: int) -> list[float]:
    prompt = [1] * context
    for slot in range(batch):  # one row at a time: the KV store is filled exactly as the engine fills it
        runner.run(StepInput.prefill([PrefillRow(slot, prompt, GREEDY)]))
    times = []
    for step in range(steps):
        rows = [DecodeRow(2, context + step, GREEDY) for _ in range(batch)]
        started = time.perf_counter()
        runner.run(StepInput.decode(rows))
        times.append(time.perf_counter() - started)
    return times


@torch.inference_mode()
def time_bare(model: Any, batch: int, context: int, steps: int) -> list[float]:
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.ones(batch, context, dtype=torch.long), past_key_values=cache, use_cache=True)
    times = []
    for step in range(steps):
        ids = torch.full((batch, 1), 2, dtype=torch.long)
        positions = torch.full((batch, 1), context + step, dtype=torch.long)
        started = time.perf_counter()
        out = model(input_ids=ids, position_ids=positions, past_key_values=cache, use_cache=True)
        out.logits[:, -1].argmax(-1).tolist()  # the same sampling work as ours (greedy)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--steps", type=int, default=16, help="decode steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="ours and the baseline alternate, round by round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]

    spec = ModelSpec(args.model, dtype=args.dtype)
    model, info = load_engine_model(spec)
    tokens = args.context + args.steps + 1  # rounds reuse the slots
    runner = build_runner(model, info, spec, max(batches), tokens, "lower --batches, --context or --steps")
    bare = AutoModelForCausalLM.from_pretrained(
        resolve_model_path(args.model), dtype=torch_dtype(args.dtype), attn_implementation="sdpa"
    ).eval()  # type: ignore[no-untyped-call]

    print(f"model {info.name} {args.dtype}, context {args.context}, {args.steps} steps, {args.threads} thread(s)")
    print(f"{'batch':>5} {'pdsim ms/step':>14} {'bare ms/step':>13} {'pdsim/bare':>11}")
    for batch in batches:
        # Alternating rounds, so that drift on a shared machine lands on both sides; the first steps warm up.
        ours: list[float] = []
        base: list[float] = []
        for _ in range(args.rounds):
            ours += time_ours(runner, batch, args.context, args.steps)[2:]
            base += time_bare(bare, batch, args.context, args.steps)[2:]
        mine, theirs = statistics.median(ours), statistics.median(base)
        print(f"{batch:>5} {mine * 1e3:>14.2f} {theirs * 1e3:>13.2f} {mine / theirs:>11.2f}")


if __name__ == "__main__":
    main()
