"""`python -m benchmarks.chaos`: the command line over one chaos run; exits 1 when a request was lost, an error
was unclear, KV was left held, the launcher stopped serving or a node process outlived it."""

from __future__ import annotations

import argparse
from dataclasses import fields

from benchmarks.chaos.config import ChaosConfig
from benchmarks.chaos.run import run
from pdsim.core.topology import Mode


def parse(argv: list[str] | None = None) -> ChaosConfig:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    for f in fields(ChaosConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, Mode):
            parser.add_argument(flag, default=value.value, choices=[m.value for m in Mode])
        else:
            parser.add_argument(flag, type=type(value), default=value)
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in fields(ChaosConfig)}
    values["mode"] = Mode(values["mode"])
    try:
        return ChaosConfig(**values)
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    report = run(config)
    for line in report.lines():
        print(line)
    print("chaos: passed" if report.passed else "chaos: FAILED")
    return 0 if report.passed else 1
