"""The report's "Where TTFT goes", from synthetic records with server timelines (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.breakdown import breakdown_section, dominant, e2el_parts, summarize, ttft_parts
from loadgen.records import RequestRecord


def _record(index: int, prefill: float, queue: float, stall: float = 0.0) -> RequestRecord:
    stages = {"tokenize": 0.001, "route": 0.0005, "node_receive": 0.0005, "queue": queue, "prefill": prefill,
              "transport": 0.002}  # fmt: skip
    stages["ttft"] = sum(stages.values())
    first = 1.0 + stages["ttft"] + 0.003  # the client sees 3 ms more than the router
    chunks = [first + 0.02 * i for i in range(10)]
    chunks[5:] = [t + stall for t in chunks[5:]]
    return RequestRecord(index, "chat", 100, 10, 1.0, chunks[-1], chunks, [1] * 10, stages=stages, nodes=["p-0"])


def test_parts_summaries_and_the_dominant_stage() -> None:
    records = [_record(i, prefill=0.1 + 0.01 * i, queue=0.02) for i in range(10)]
    records.append(RequestRecord(99, "chat", 100, 10, 1.0, 2.0, [], [], "error"))  # failed: left out
    parts = ttft_parts(records)
    assert len(parts["prefill"]) == 10
    assert parts["client"] == pytest.approx([0.003] * 10)
    summary = summarize(parts)
    assert summary["prefill"][0] == pytest.approx(0.145)
    assert summary["prefill"][1] > summary["prefill"][0]
    stage, share = dominant(summary)
    assert stage == "prefill" and 0.7 < share < 0.9


def test_stalls_are_what_long_gaps_add() -> None:
    parts = e2el_parts([_record(0, 0.1, 0.0, stall=0.5)])
    assert parts["stalls"][0] == pytest.approx(0.5 + 0.02 - 3 * 0.02)
    assert parts["decode"][0] + parts["stalls"][0] == pytest.approx(9 * 0.02 + 0.5)


def test_the_section_names_each_arms_dominant_stage_and_draws_both_plots(tmp_path: Path) -> None:
    by_arm = {
        "colocated": [_record(i, prefill=0.05, queue=0.3) for i in range(5)],
        "disaggregated": [_record(i, prefill=0.2, queue=0.01, stall=0.1) for i in range(5)],
    }
    for record in by_arm["disaggregated"]:
        record.stages |= {"kv_push": 0.04, "kv_handoff": 0.06, "decode_queue": 0.002, "first_decode_step": 0.015}
    lines = breakdown_section(by_arm, 1.5, tmp_path, {1.0: by_arm})
    text = "\n".join(lines)
    assert "- colocated: queue dominates TTFT (300 ms median" in text
    assert "- disaggregated: prefill dominates TTFT (200 ms median" in text
    assert "| colocated | 1.0 / 1.0 | 0.5 / 0.5 | 0.5 / 0.5 | 300 / 300 | 50 / 50 | 2.0 / 2.0 | 3.0 / 3.0 |" in text
    assert "at 1 req/s, the largest TTFT stage: colocated queue" in text
    assert "| disaggregated | 40 / 40 | 60 / 60 | 2.0 / 2.0 | 15 / 15 |" in text  # after the first token
    assert "| colocated | 40" not in text
    assert (tmp_path / "ttft_breakdown.png").stat().st_size > 0 and (tmp_path / "e2el_breakdown.png").exists()


def test_records_without_timelines_say_so(tmp_path: Path) -> None:
    record = _record(0, 0.1, 0.0)
    record.stages = {}
    assert "No request carried a server timeline" in "\n".join(breakdown_section({"a": [record]}, 1, tmp_path, {}))
