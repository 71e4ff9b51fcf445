"""The fault-injection harness: a real `pdsim up` cluster (tiny preset) under bounded load while chosen faults
happen, through the chaos benchmark's pieces, and the checks every fault must pass."""

from __future__ import annotations

from benchmarks.chaos.config import ChaosConfig
from benchmarks.chaos.faults import Fault
from benchmarks.chaos.run import ChaosReport, run

REJOIN_SECONDS = 3.0  # a restarted node serves again within this of being up; a stopped one leaves rotation in it


def run_faults(config: ChaosConfig, faults: list[Fault]) -> ChaosReport:
    report = run(config, faults, log=lambda line: None)
    print("\n".join(report.lines()))  # shown by pytest when a check fails
    return report


def check(report: ChaosReport) -> None:
    """What every fault must leave behind."""
    assert report.counts["lost"] == 0, report.lines()
    assert not report.unclear, report.lines()
    assert report.kv_left == 0, report.kv_held
    assert report.still_serving and report.launcher_exit == 0, report.lines()
    assert not report.leaked, f"node processes outlived the launcher: {report.leaked}"
    for result in report.faults:
        if result.fault.kind == "giant":
            assert result.status.startswith("INVALID_ARGUMENT: "), result.line()
            assert "127.0.0.1" not in result.status and "bytes" in result.status, result.line()
            continue
        assert result.out_of_rotation is not None and result.out_of_rotation <= REJOIN_SECONDS, result.line()
        assert result.node_ready is not None and result.back_in_rotation is not None, result.line()
        assert result.back_in_rotation - result.node_ready <= REJOIN_SECONDS, result.line()
        # Requests sent once the node had had time to rejoin all succeed (or were dropped by their own client).
        settled = result.applied + result.node_ready + REJOIN_SECONDS
        later = [o for o in report.outcomes if o.sent >= settled and o.sent < settled + 10.0]
        assert all(o.kind in ("ok", "cancelled") for o in later), [(o.kind, o.code, o.detail) for o in later]
