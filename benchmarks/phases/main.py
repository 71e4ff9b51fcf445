"""`pdsim phases` / `make phases`: run the phase benchmark and write the table, results.json and roofline.png.

python -m benchmarks.phases [--model small] [--dtype bfloat16] [--requests 10] [--batches 1,2,4] ...
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.phases.config import PhasesConfig
from pdsim.models.flags import add_model_args, model_spec_from

if TYPE_CHECKING:  # torch loads only when the benchmark runs, not when the CLI parses
    from benchmarks.phases.roofs import Peaks


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,4; got {text!r}") from None


def _joined(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def add_phases_args(parser: argparse.ArgumentParser) -> None:
    d = PhasesConfig()
    add_model_args(parser, d.model)
    parser.add_argument("--requests", type=int, default=d.requests, help="headline: concurrent requests")
    parser.add_argument("--input-tokens", type=int, default=d.input_tokens, help="headline: prompt tokens each")
    parser.add_argument("--output-tokens", type=int, default=d.output_tokens, help="headline: tokens generated each")
    parser.add_argument("--batches", type=_ints, default=_joined(d.batches), help="decode sweep: batch sizes")
    parser.add_argument("--contexts", type=_ints, default=_joined(d.contexts), help="decode sweep: cached tokens")
    parser.add_argument("--steps", type=int, default=d.steps, help="decode sweep: timed steps per point")
    parser.add_argument("--prefill-batches", type=_ints, default=_joined(d.prefill_batches))
    parser.add_argument("--prefill-lengths", type=_ints, default=_joined(d.prefill_lengths))
    parser.add_argument("--repeats", type=int, default=d.repeats, help="prefill sweep: timed prefills per point")
    parser.add_argument("--mixed-decodes", type=_ints, default=_joined(d.mixed_decodes), help="mixed sweep: decodes")
    parser.add_argument("--mixed-chunks", type=_ints, default=_joined(d.mixed_chunks), help="mixed sweep: chunk sizes")
    parser.add_argument("--mixed-context", type=int, default=d.mixed_context, help="mixed sweep: decodes' context")
    parser.add_argument("--threads", type=int, default=d.threads, help="CPU: torch threads (a pdsim node uses 1)")
    parser.add_argument("--matmul-size", type=int, default=d.matmul_size, help="compute roof: n x n matmul")
    parser.add_argument("--copy-mib", type=int, default=d.copy_mib, help="memory roof: MiB copied")
    parser.add_argument("--out", default=str(d.output), help="directory for results.json and roofline.png")
    parser.add_argument(
        "--emulate", default=None, metavar="emulated:PROFILE",
        help="predict the points on an emulated device's roofs (no torch; --model may be a shipped config)",
    )  # fmt: skip


def phases_config_from(args: argparse.Namespace) -> PhasesConfig:
    return PhasesConfig(
        model=model_spec_from(args),
        requests=args.requests,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        batches=args.batches,
        contexts=args.contexts,
        steps=args.steps,
        prefill_batches=args.prefill_batches,
        prefill_lengths=args.prefill_lengths,
        repeats=args.repeats,
        mixed_decodes=args.mixed_decodes,
        mixed_chunks=args.mixed_chunks,
        mixed_context=args.mixed_context,
        threads=args.threads,
        matmul_size=args.matmul_size,
        copy_mib=args.copy_mib,
        output=Path(args.out),
        emulate=args.emulate,
    )


def run_phases(config: PhasesConfig, log: Callable[[str], object] = print) -> dict[str, Any]:
    """Run the whole benchmark; write results.json and roofline.png under `config.output`; return the results."""
    if config.emulate is not None:
        from benchmarks.phases.emulated import run_emulated_phases

        return run_emulated_phases(config, config.emulate, log)
    import torch

    from benchmarks.phases import report
    from benchmarks.phases.mixed import format_mixed, mixed_point
    from benchmarks.phases.peaks import device_name, measure_peaks
    from benchmarks.phases.roofline_plot import plot_roofline
    from benchmarks.phases.roofs import spec_peaks
    from benchmarks.phases.timing import PhaseTimer
    from pdsim.core.emulation.shape import ModelShape
    from pdsim.engine.build import build_runner, load_engine_model

    torch.set_num_threads(config.threads)
    device = torch.device(config.model.device)
    name = device_name(device)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    log(
        f"device {config.model.device} ({name}), {config.model.dtype}"
        + (f", {threads} torch thread(s)" if threads else "")
    )

    def peaks(when: str) -> Peaks:
        found = measure_peaks(device, config.model.dtype, config.matmul_size, config.copy_mib * 2**20)
        log(
            f"peaks {when}: {found.flops_per_s / 1e9:,.1f} GFLOP/s ({config.matmul_size}^2 matmul), "
            f"{found.bytes_per_s / 1e9:,.1f} GB/s ({config.copy_mib} MiB copy)"
        )
        return found

    # Measured before and after the phases, keeping the best of each: on a shared machine a neighbour's burst
    # during one measurement must not lower the roof that every MFU and MBU is divided by.
    first = peaks("before")
    spec = spec_peaks(name, config.model.dtype)

    model, info = load_engine_model(config.model)
    hf_config: Any = model.config
    shape = ModelShape.from_config(hf_config.to_dict())
    if config.kv_tokens > info.limits.max_context:
        raise ValueError(
            f"the benchmark needs {config.kv_tokens} tokens per request but {info.name} holds "
            f"{info.limits.max_context}; lower --contexts or --input-tokens/--output-tokens"
        )
    remedy = "lower --requests, --batches or --prefill-batches, or the token counts"
    runner = build_runner(model, info, config.model, config.kv_slots, config.kv_tokens, remedy)
    timer = PhaseTimer(runner, shape)
    log(
        f"model {info.name}: {shape.matmul_params / 1e6:.1f}M matmul parameters, KV store "
        f"{runner.kv.capacity_bytes / 2**20:,.0f} MiB ({config.kv_slots} slots x {config.kv_tokens} tokens)"
    )

    c = config
    log(f"headline: {c.requests} requests x {c.input_tokens} in / {c.output_tokens} out ...")
    headline = timer.headline(c.requests, c.input_tokens, c.output_tokens)
    log(f"prefill sweep: batches {_joined(c.prefill_batches)} x lengths {_joined(c.prefill_lengths)} ...")
    prefill = [timer.prefill_point(b, n, c.repeats) for n in c.prefill_lengths for b in c.prefill_batches]
    log(f"decode sweep: batches {_joined(c.batches)} x contexts {_joined(c.contexts)} ...")
    decode = [timer.decode_point(b, n, c.steps, c.warmup) for n in c.contexts for b in c.batches]
    log(f"mixed sweep: {_joined(c.mixed_decodes)} decodes x chunks {_joined(c.mixed_chunks)} ...")
    mixed = [mixed_point(runner, b, n, c.mixed_context, c.repeats) for b in c.mixed_decodes for n in c.mixed_chunks]

    measured = first.best(peaks("after"))
    log(
        f"roofs: {measured.flops_per_s / 1e9:,.1f} GFLOP/s, {measured.bytes_per_s / 1e9:,.1f} GB/s, "
        f"ridge {measured.ridge:.1f} FLOP/B"
    )
    results: dict[str, Any] = {
        "setup": {
            "model": info.name,
            "device": config.model.device,
            "device_name": name,
            "dtype": config.model.dtype,
            "threads": threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "shape": {f: getattr(shape, f) for f in shape.__dataclass_fields__},
            "matmul_params": shape.matmul_params,
            "requests": c.requests,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
            "decode_steps_per_point": c.steps,
            "prefill_repeats_per_point": c.repeats,
        },
        "peaks": {"measured": report.peaks_record(measured), "spec": report.peaks_record(spec) if spec else None},
        "headline": report.headline_record(headline, measured, spec),
        "prefill": [report.point_record(p, measured, spec) for p in prefill],
        "decode": [report.point_record(p, measured, spec) for p in decode],
        "mixed": [p.record() for p in mixed],
        "claims": report.claims(headline, decode),
    }
    c.output.mkdir(parents=True, exist_ok=True)
    (c.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    title = f"{info.name} {c.model.dtype} on {name}" + (f", {threads} thread(s)" if threads else "")
    plot_roofline(c.output / "roofline.png", prefill, decode, headline, measured, spec, title)

    log("")
    log(report.format_table([results["headline"]["prefill"], results["headline"]["decode"]]))
    log("")
    log(report.format_table(results["prefill"] + results["decode"]))
    log("")
    log(format_mixed(mixed))
    log("")
    log(report.format_claims(results["claims"]))
    log(f"\nresults: {c.output / 'results.json'}, {c.output / 'roofline.png'}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_phases_args(parser)
    args = parser.parse_args(argv)
    try:
        run_phases(phases_config_from(args))
    except ValueError as error:
        print(f"phases: {error}", file=sys.stderr)
        return 2
    return 0
