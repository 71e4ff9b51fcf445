"""`pdsim compare --repeats 2 --find-capacity` end to end, on the tiny model with short runs: each repeat and
probe lands in its directory, and the report gives intervals, the tie rule it used and each arm's capacity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from apps.capacity import CapacitySearch
from apps.experiment import ExperimentConfig, run_compare
from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.models.spec import ModelSpec

RATE = 4.0


@pytest.mark.slow  # two clusters started, eight short runs: about 30 s here
def test_compare_with_repeats_and_a_capacity_search(tmp_path: Path) -> None:
    config = ExperimentConfig(
        model=ModelSpec("tiny"),
        arms=("colocated", "disaggregated"),
        workload=WorkloadSpec(mix="chat", arrivals=Arrivals(ArrivalKind.POISSON, rate=RATE)),
        limits=RunLimits(duration=1.5, warmup=1, request_timeout=60, drain_timeout=30),
        rate=RATE,
        repeats=2,
        repeat_rates=(RATE,),
        find_capacity=True,
        capacity=CapacitySearch(max_probes=2, probe_duration=1.0),
        output=tmp_path,
    )
    (tmp_path / "compare" / "colocated" / "rate-9").mkdir(parents=True)  # an earlier experiment's rate: cleared
    report = run_compare(config).read_text()

    compare = tmp_path / "compare"
    for arm in config.arms:
        assert sorted(p.name for p in (compare / arm).iterdir()) == ["capacity", f"rate-{RATE:g}"]
        seeds = [json.loads((compare / arm / f"rate-{RATE:g}" / f"repeat-{k}" / "summary.json").read_text())
                 ["workload"]["seed"] for k in (1, 2)]  # fmt: skip
        assert seeds == [0, 1]
        search = json.loads((compare / arm / "capacity" / "search.json").read_text())
        assert len(search["probes"]) == 2 and search["start"] in ([RATE, None], [None, RATE])
        for probe in search["probes"]:
            assert (compare / arm / "capacity" / f"rate-{probe['rate']:g}" / "summary.json").exists()

    assert "- 2 runs per rate (seeds 0, 1" in report and "only when the intervals do not overlap" in report
    ttft = next(line for line in report.splitlines() if line.startswith("| TTFT p90 (ms) |"))
    assert re.fullmatch(r"\| TTFT p90 \(ms\) \| \d+( \[\d+, \d+\])? \| \d+( \[\d+, \d+\])? \|", ttft), ttft
    assert "| completed / sent (all repeats) |" in report
    assert "## Capacity by search" in report
    capacity = [line for line in report.splitlines() if line.startswith(("- colocated: ", "- disaggregated: "))]
    assert len(capacity) == 2 and all("2 probes: " in line for line in capacity), capacity
    assert "intervals overlap" in report or "holds here" in report
    assert "rate-<r>/repeat-<k>/requests.jsonl" in report
    for name in ("ttft_cdf", "attainment_vs_rate", "goodput_vs_rate"):
        assert (compare / f"{name}.png").stat().st_size > 10_000
