"""Faults under load, on a real `pdsim up` cluster of the tiny preset: nodes of each role killed (-9), stopped
(SIGSTOP, then SIGCONT) and restarted, clients that disconnect mid-flight, and 8 MB prompts. After each: every
request ended with success or a clear error, a stopped node left rotation and a restarted one rejoined within
3 s, requests sent after that succeeded, every node's KV is back to zero, and the launcher still serves.

The colocated kill runs in the default suite (about 30 s); the per-role sequences are slow-marked."""

from __future__ import annotations

import pytest

from benchmarks.chaos.config import ChaosConfig
from benchmarks.chaos.faults import Fault
from pdsim.core.topology import Mode
from tests.faults.harness import check, run_faults


def test_a_killed_colocated_worker_restarts_and_nothing_is_lost_meanwhile() -> None:
    config = ChaosConfig(minutes=14 / 60, rate=3.0, mode=Mode.COLOCATED, workers=2, seed=1)
    report = run_faults(config, [Fault(2.0, "kill", "colocated-0"), Fault(4.0, "giant", "")])
    check(report)
    assert report.counts["ok"] > 0.7 * report.counts["sent"], report.lines()


@pytest.mark.slow
@pytest.mark.parametrize("node", ["prefill-0", "decode-2"])
def test_each_fault_on_a_disaggregated_node(node: str) -> None:
    config = ChaosConfig(minutes=50 / 60, rate=3.0, mode=Mode.DISAGGREGATED, prefill=2, decode=2, seed=2)
    faults = [Fault(2.0, "kill", node), Fault(16.0, "stop", node), Fault(30.0, "restart", node)]
    report = run_faults(config, [*faults, Fault(44.0, "giant", "")])
    check(report)


@pytest.mark.slow
def test_a_stopped_colocated_worker_leaves_rotation_and_returns() -> None:
    config = ChaosConfig(minutes=20 / 60, rate=3.0, mode=Mode.COLOCATED, workers=2, seed=3)
    check(run_faults(config, [Fault(2.0, "stop", "colocated-1")]))
