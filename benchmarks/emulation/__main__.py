"""python -m benchmarks.emulation overhead|fidelity|startup [...]"""

from __future__ import annotations

import argparse
import sys

from benchmarks.emulation.fidelity import (
    add_fidelity_args,
    fidelity_config_from,
    format_fidelity,
    run_fidelity,
)
from benchmarks.emulation.overhead import add_overhead_args, format_overhead, overhead_config_from, run_overhead
from benchmarks.emulation.startup import run_startup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulation", description=__doc__)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    add_overhead_args(sub.add_parser("overhead", help="the dilation a cluster shape needs"))
    add_fidelity_args(sub.add_parser("fidelity", help="a real cluster on this CPU against its emulated twin"))
    sub.add_parser("startup", help="a real node's start-up time and memory against an emulated one's")
    args = parser.parse_args(argv)
    if args.benchmark == "startup":
        print(run_startup(), flush=True)
    elif args.benchmark == "overhead":
        config = overhead_config_from(args)
        print(format_overhead(config, run_overhead(config)), flush=True)
    else:
        fidelity = fidelity_config_from(args)
        print(format_fidelity(fidelity, run_fidelity(fidelity)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
