"""Prefill of a batch mixing one long prompt with short ones: right-padded against packed.

A padded batch runs every row to the longest prompt (1 x 2,000 + 5 x 160 tokens costs 6 x 2,000 = 12,000 token
computations for 2,800 real ones); pdsim's runner packs the prompts into one sequence with no padding. The padded
side is plain transformers (`sdpa`, right padding, no cache), the way pdsim prefilled before packing.

    python -m benchmarks.prefill_packing [--model small] [--dtype bfloat16] [--long 2000] [--short 160x5]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from benchmarks.phases.peaks import timed
from benchmarks.phases.timing import GREEDY
from pdsim.engine.build import build_runner, load_engine_model
from pdsim.engine.step import PrefillRow, StepInput
from pdsim.models.dtypes import torch_dtype
from pdsim.models.loading import resolve_model_path
from pdsim.models.spec import ModelSpec


@torch.inference_mode()
def padded_prefill(model: Any, prompts: list[list[int]]) -> list[int]:
    """Right-padded to the longest prompt; each row's first token from its last real position."""
    lengths = [len(p) for p in prompts]
    ids = torch.zeros(len(prompts), max(lengths), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = torch.tensor(prompt)
    hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state
    last = hidden[torch.arange(len(prompts)), torch.tensor(lengths) - 1]
    return model.lm_head(last).argmax(-1).tolist()  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--long", type=int, default=2000, help="tokens of the one long prompt")
    parser.add_argument("--short", default="160x5", help="LENGTHxCOUNT short prompts")
    parser.add_argument("--rounds", type=int, default=3, help="padded and packed alternate, round by round")
    parser.add_argument("--threads", type=int, default=1, help="a pdsim node runs one torch thread")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    short_len, count = (int(v) for v in args.short.split("x"))
    generator = torch.Generator().manual_seed(0)
    lengths = [args.long] + [short_len] * count
    prompts = [torch.randint(0, 256, (n,), generator=generator).tolist() for n in lengths]

    spec = ModelSpec(args.model, dtype=args.dtype)
    model, info = load_engine_model(spec)
    runner = build_runner(model, info, spec, len(prompts), max(lengths), "lower --long or --short")
    bare = AutoModelForCausalLM.from_pretrained(
        resolve_model_path(args.model), dtype=torch_dtype(args.dtype), attn_implementation="sdpa"
    ).eval()  # type: ignore[no-untyped-call]
    rows = [PrefillRow(slot, prompt, GREEDY) for slot, prompt in enumerate(prompts)]
    sides: dict[str, Callable[[], list[int]]] = {
        "padded": lambda: padded_prefill(bare, prompts),
        "packed": lambda: runner.run(StepInput.prefill(rows)).tokens,
    }
    device = runner.kv.keys[0].device
    times: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds + 1):  # round 0 warms both up
        for name, run in sides.items():
            seconds = timed(run, device)[1]
            if round_:
                times[name].append(seconds)
    real, padded_tokens = sum(lengths), len(lengths) * max(lengths)
    print(f"model {info.name} {args.dtype}, {args.threads} thread(s); prompts {lengths}")
    print(f"padded: {statistics.median(times['padded']) * 1e3:8.1f} ms  ({padded_tokens} token computations)")
    print(f"packed: {statistics.median(times['packed']) * 1e3:8.1f} ms  ({real} token computations)")
    print(f"packed/padded: {statistics.median(times['packed']) / statistics.median(times['padded']):.2f}")


if __name__ == "__main__":
    main()
