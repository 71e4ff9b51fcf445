"""The flags of `pdsim calibrate`, their defaults read from `CalibrateConfig`. Torch-free: it loads only to run."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.calibrate.config import QUICK_HELD_OUT, QUICK_TRAIN, CalibrateConfig
from pdsim.models.flags import add_model_args, model_spec_from


def add_calibrate_args(parser: argparse.ArgumentParser) -> None:
    d = CalibrateConfig()
    add_model_args(parser, d.model)
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads (CPU: one per pdsim node)")
    parser.add_argument("--repeats", type=int, default=d.repeats, help="timed runs per step shape (median)")
    parser.add_argument("--output", default=None, help=f"the profile to write (default {d.output_path.parent}/...)")
    parser.add_argument("--quick", action="store_true", help="a handful of small shapes (for tests)")
    parser.add_argument(
        "--from-steps", nargs="+", default=None, metavar="FILE",
        help="fit to steps serving nodes recorded (--record-steps) instead of measuring steps alone",
    )  # fmt: skip


def calibrate_config_from(args: argparse.Namespace) -> CalibrateConfig:
    quick = {"train": QUICK_TRAIN, "held_out": QUICK_HELD_OUT, "matmul_size": 256, "copy_mib": 16} if args.quick else {}
    return CalibrateConfig(
        model=model_spec_from(args),
        threads=args.threads,
        repeats=args.repeats,
        output=Path(args.output) if args.output else None,
        **quick,  # type: ignore[arg-type]
    )


def run_calibrate_command(args: argparse.Namespace) -> int:
    from benchmarks.calibrate.main import calibrate_from_steps, format_calibration, run_calibrate

    config = calibrate_config_from(args)
    if args.from_steps:
        calibration = calibrate_from_steps(config, [Path(f) for f in args.from_steps])
    else:
        calibration = run_calibrate(config)
    print(format_calibration(calibration, str(config.output_path)))
    return 0
