"""The model flags (`--model`, `--device`, `--dtype`, `--max-context`), added the same way by every command that
loads a model; their defaults come from the `ModelSpec` the caller passes. Plain argparse, torch-free."""

from __future__ import annotations

import argparse

from pdsim.core.kv_layout import DTYPE_BYTES
from pdsim.models.presets import PRESETS
from pdsim.models.spec import ModelSpec


def add_model_args(parser: argparse.ArgumentParser, defaults: ModelSpec) -> None:
    group = parser.add_argument_group("model")
    presets = ", ".join(sorted(PRESETS))
    group.add_argument("--model", default=defaults.model, help=f"a preset ({presets}) or a local checkpoint path")
    group.add_argument(
        "--device", default=defaults.device, help="cpu, cuda[:N], mps, or emulated:<profile> (see `pdsim hardware`)"
    )
    group.add_argument("--dtype", default=defaults.dtype, choices=list(DTYPE_BYTES))
    group.add_argument(
        "--max-context", type=int, default=defaults.max_context, help="cap the model's context (saves KV memory)"
    )


def model_spec_from(args: argparse.Namespace) -> ModelSpec:
    return ModelSpec(args.model, args.device, args.dtype, args.max_context)
