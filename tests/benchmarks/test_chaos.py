"""The chaos benchmark's parts that need no cluster: its fault schedule, its tally and its command line (the
fault tests in tests/faults run it against real clusters)."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.chaos.config import ChaosConfig
from benchmarks.chaos.faults import KINDS, schedule
from benchmarks.chaos.load import Outcome, tally
from benchmarks.chaos.main import parse
from pdsim.core.topology import Mode


def test_the_schedule_is_seeded_spaced_and_leaves_the_last_period_quiet() -> None:
    nodes = ["decode-2", "decode-3", "prefill-0", "prefill-1"]
    faults = schedule(nodes, seconds=300, every=20, seed=0)
    assert faults == schedule(nodes, seconds=300, every=20, seed=0)
    assert faults != schedule(nodes, seconds=300, every=20, seed=1)
    assert 10 <= len(faults) <= 19
    gaps = [b.at - a.at for a, b in itertools.pairwise(faults)]
    assert all(15 <= gap <= 25 for gap in gaps) and faults[0].at >= 15
    assert faults[-1].at < 300 - 20  # its node is back before the load ends
    assert {f.kind for f in faults} == set(KINDS) and {f.node for f in faults} <= set(nodes)


def test_tally_counts_each_ending_and_each_error_code() -> None:
    outcomes = [Outcome(0.0, "ok"), Outcome(0.0, "ok"), Outcome(0.0, "cancelled"), Outcome(0.0, "lost")]
    outcomes += [Outcome(0.0, "error", "UNAVAILABLE", "no node"), Outcome(0.0, "error", "UNAVAILABLE", "no node")]
    assert tally(outcomes) == {"sent": 6, "ok": 2, "error": 2, "cancelled": 1, "lost": 1, "error:UNAVAILABLE": 2}


def test_the_command_line_reads_its_defaults_from_the_config() -> None:
    assert parse([]) == ChaosConfig()
    assert parse(["--minutes", "0.5", "--mode", "colocated", "--seed", "7"]) == ChaosConfig(
        minutes=0.5, mode=Mode.COLOCATED, seed=7
    )


@pytest.mark.parametrize("argv", [["--minutes", "0"], ["--cancel-fraction", "1.5"], ["--mode", "mixed"]])
def test_bad_settings_are_refused_by_name(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv)
    assert argv[0].lstrip("-").replace("-", "_") in capsys.readouterr().err.replace("-", "_")
