"""`pdsim`: the command line. Each subcommand parses its flags into a frozen config and hands it on.

Defaults come from the config dataclasses, so the CLI and the code cannot disagree. One module per command group:
`serve` (one server process), `cluster` (whole clusters), `tools` (clients, benchmark, report); `flags` holds the
flag groups they share.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from apps.cli.cluster import add_cluster_commands
from apps.cli.serve import add_server_commands, config_class
from apps.cli.tools import add_tool_commands


def build_parser(loaded: object | None = None) -> argparse.ArgumentParser:
    """`loaded`: a config read from `--config`, whose values become its command's defaults."""
    parser = argparse.ArgumentParser(prog="pdsim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    add_server_commands(sub, loaded)
    add_cluster_commands(sub)
    add_tool_commands(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse once to find `--config`; with one, parse again with the file's config as the defaults, so only the
    flags on the command line override the file."""
    args = build_parser().parse_args(argv)
    if getattr(args, "config", None):
        from apps.config_io import read_config

        args = build_parser(read_config(config_class(args.command), args.config)).parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    try:
        args = parse_args(argv)
    except (ValueError, OSError) as error:  # a bad or missing --config file
        print(f"pdsim: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    try:
        code: int = args.run(args)
        return code
    except (ValueError, OSError, TimeoutError) as error:  # OSError: ConnectionError, a port in use
        print(f"pdsim {args.command}: {error}", file=sys.stderr)
        return 2
