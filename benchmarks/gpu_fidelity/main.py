"""`python -m benchmarks.gpu_fidelity [--model llama-3.1-8b] [--device cuda] [--profile h100-sxm]`

Builds a random-weight model of the config's shape directly on the GPU (no download, no weights on the host),
times prefill and decode steps on pdsim's own runner and KV store over a few batch sizes and contexts, and
prints each against the emulated profile's prediction for the same GPU: the check that the profile's
efficiencies hold on real silicon. Under three minutes on an H100. `--device cpu --model tiny --quick` runs the
same path anywhere (against a GPU profile its errors mean nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.calibrate.config import Shape
from benchmarks.gpu_fidelity.devices import profile_for_gpu
from pdsim.core.emulation.fit import MeasuredStep, error_summary, prediction_errors
from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.shape import ModelShape

SHAPES = (
    *(Shape(prefills=b, length=n) for b, n in ((1, 512), (1, 2048), (4, 1024), (8, 512))),
    *(Shape(decodes=b, context=c) for b, c in ((1, 1024), (8, 1024), (32, 1024), (64, 2048), (128, 512))),
)
QUICK = (Shape(prefills=1, length=32), Shape(prefills=2, length=64), Shape(decodes=1, context=16),
         Shape(decodes=4, context=64))  # fmt: skip


def _build(model_name: str, device: Any, dtype: str, slots: int, tokens: int) -> tuple[Any, ModelShape]:
    """pdsim's runner over a random-weight model of the config's shape, created on `device` itself."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from pdsim.engine.attention import ATTENTION_NAME, register_attention
    from pdsim.engine.build import build_runner
    from pdsim.models.dtypes import torch_dtype
    from pdsim.models.loading import describe_model
    from pdsim.models.spec import ModelSpec

    config_entry = load_model_config(model_name)
    register_attention()
    data = {k: v for k, v in _config_dict(model_name).items() if not k.startswith("pdsim_")}
    hf_config = AutoConfig.for_model(**data)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            hf_config, dtype=torch_dtype(dtype), attn_implementation=ATTENTION_NAME
        )
    model.eval()
    info = describe_model(model, Path(model_name), torch_dtype(dtype), tokens)
    spec = ModelSpec("tiny", str(device), dtype)  # only its device and dtype are read
    return build_runner(model, info, spec, slots, tokens, "use --quick or a GPU with more memory"), config_entry.shape


def _config_dict(model_name: str) -> dict[str, Any]:
    from importlib import resources

    from pdsim.core.emulation.models import shipped_model_names
    from pdsim.core.preset_shapes import PRESETS

    if model_name in PRESETS:
        return PRESETS[model_name].hf_config()
    if model_name in shipped_model_names():
        text = resources.files("pdsim.core.emulation").joinpath("configs", f"{model_name}.json").read_text()
        return dict(json.loads(text))
    return dict(json.loads((Path(model_name) / "config.json").read_text()))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from benchmarks.calibrate.main import measure_steps
    from benchmarks.phases.peaks import device_name

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this where a GPU is at hand (or --device cpu to try the path)")
    name = device_name(device)
    profile_id = args.profile or profile_for_gpu(name)
    if profile_id is None:
        raise SystemExit(f"no shipped profile matches {name!r}: pass --profile")
    profile = load_profile(profile_id)
    shapes = QUICK if args.quick else SHAPES
    slots = max(s.prefills + s.decodes for s in shapes)
    tokens = max(max(s.length, s.context + 1) for s in shapes)
    runner, shape = _build(args.model, device, args.dtype, slots, tokens)
    steps = measure_steps(runner, shapes, args.repeats, device)
    errors = prediction_errors(profile, shape, args.dtype, steps)
    return {
        "device": name,
        "profile": profile.id,
        "model": args.model,
        "dtype": args.dtype,
        "steps": [_record(step, error) for step, error in zip(steps, errors, strict=True)],
        "median_abs_error": error_summary(errors)[0],
        "p90_abs_error": error_summary(errors)[1],
    }


def _record(step: MeasuredStep, error: float) -> dict[str, Any]:
    return {"step": step.name, "measured_s": step.seconds, "predicted_s": step.seconds * (1 + error), "error": error}


def format_results(results: dict[str, Any]) -> str:
    lines = [
        f"{results['model']} ({results['dtype']}) on {results['device']} against emulated:{results['profile']}",
        f"{'step':<30} {'measured ms':>11} {'predicted ms':>12} {'error':>7}",
    ]
    for step in results["steps"]:
        lines.append(f"{step['step']:<30} {step['measured_s'] * 1000:>11.2f} {step['predicted_s'] * 1000:>12.2f} "
                     f"{step['error']:>+7.1%}")  # fmt: skip
    lines.append(f"median |error| {results['median_abs_error']:.1%}, p90 {results['p90_abs_error']:.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_fidelity", description=__doc__)
    parser.add_argument("--model", default="llama-3.1-8b", help="a shipped config, a preset, or a config dir")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--profile", default=None, help="default: the shipped profile matching the GPU's name")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a few tiny shapes (to try the path on a CPU)")
    parser.add_argument("--output", default="results/gpu_fidelity.json")
    args = parser.parse_args(argv)
    results = run(args)
    print(format_results(results))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    bias = statistics.median(s["error"] for s in results["steps"])
    print(f"results: {args.output}; the median signed error (the profile's bias) {bias:+.1%}")
    return 0
