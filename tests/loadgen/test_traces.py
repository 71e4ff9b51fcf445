"""The trace readers on the traces pdsim ships: row counts, units, prefix hashes, and the length policy."""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

import pytest

import loadgen.trace_data
from loadgen.traces import KNOWN_TRACES, default_traces_dir, parse_azure_timestamp, read_trace
from loadgen.workload import LengthPolicy, fit_lengths, plan_from_trace, scale_factor
from pdsim.core.slo import Slo


@pytest.fixture(autouse=True)
def _shipped_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here reads the traces pdsim ships, whatever the environment says."""
    monkeypatch.delenv("PDSIM_TRACES_DIR", raising=False)


def test_the_shipped_traces_are_package_data() -> None:
    directory = default_traces_dir()
    assert directory == Path(loadgen.trace_data.__file__).parent
    for file in KNOWN_TRACES.values():
        assert (directory / file).is_file(), file
    assert "CC-BY-4.0" in (directory / "README.md").read_text()


def test_traces_dir_overrides_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / KNOWN_TRACES["azure-code"]).write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.0,10,2\n2023-11-16 18:17:05.5,20,3\n"
    )
    monkeypatch.setenv("PDSIM_TRACES_DIR", str(tmp_path))
    assert [(r.arrival, r.input_tokens, r.output_tokens) for r in read_trace("azure-code")] == [
        (0.0, 10, 2),
        (2.5, 20, 3),
    ]


def test_azure_traces() -> None:
    code, conv = read_trace("azure-code"), read_trace("azure-conv")
    assert (len(code), len(conv)) == (8819, 19366)
    assert code[0].arrival == 0.0
    assert all(b.arrival >= a.arrival for a, b in itertools.pairwise(code))  # type: ignore[operator]
    span = code[-1].arrival
    assert span is not None and 3000 < span < 3700  # about an hour, in seconds
    assert code[0].input_tokens > 0 and code[0].output_tokens >= 0


def test_azure_timestamps_keep_seven_fractional_digits_and_zones() -> None:
    a = parse_azure_timestamp("2023-11-16 18:17:03.9799600")
    b = parse_azure_timestamp("2023-11-16 18:17:04.0000001")
    assert b - a == pytest.approx(0.0200401, abs=1e-6)
    assert parse_azure_timestamp("2024-05-10 00:00:00.009930+00:00") - parse_azure_timestamp(
        "2024-05-10 00:00:00+00:00"
    ) == pytest.approx(0.00993, abs=1e-6)  # float seconds since the epoch resolve ~0.2 us
    assert parse_azure_timestamp("2024-05-10 02:00:00+02:00") == parse_azure_timestamp("2024-05-10 00:00:00")


def test_mooncake_keeps_prefix_hashes() -> None:
    mooncake = read_trace("mooncake")
    assert (mooncake[0].input_tokens, mooncake[0].output_tokens, mooncake[0].hash_ids) == (40160, 6, tuple(range(79)))
    assert all(len(r.hash_ids) == -(-r.input_tokens // 512) for r in mooncake)  # one id per 512-token block


def test_other_mooncake_traces_read_from_a_path(tmp_path: Path) -> None:
    """Mooncake's conversation and tool-agent traces share the synthetic one's format."""
    path = tmp_path / "conversation_trace.jsonl"
    first = {"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": list(range(46, 60))}
    second = {"timestamp": 30535, "input_length": 600, "output_length": 14, "hash_ids": [46, 60]}
    path.write_text(f"{json.dumps(first)}\n{json.dumps(second)}\n")
    trace = read_trace(str(path))
    assert [(r.input_tokens, r.output_tokens) for r in trace] == [(6955, 52), (600, 14)]
    assert [r.arrival for r in trace] == pytest.approx([0.0, 3.053])  # milliseconds, from the first request
    assert trace[1].hash_ids == (46, 60) and trace[0].hash_ids[0] == 46  # a shared first block
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 1, "input_length": "many", "output_length": 2}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not a Mooncake trace record"):
        read_trace(str(bad))


def test_mooncake_and_sharegpt() -> None:
    mooncake = read_trace("mooncake")
    assert len(mooncake) == 3993
    span = mooncake[-1].arrival
    assert span is not None and 15 * 60 < span < 20 * 60  # milliseconds read as seconds: ~17 minutes
    assert max(r.input_tokens for r in mooncake) > 10_000
    sharegpt = read_trace("sharegpt")
    assert len(sharegpt) == 17400 and all(r.arrival is None for r in sharegpt)
    prompts = sorted(r.input_tokens for r in sharegpt)
    assert prompts[len(prompts) // 2] == pytest.approx(143, abs=2)  # the README's p50


def test_length_policies() -> None:
    assert fit_lengths(100, 50, 200, LengthPolicy.CLIP) == (100, 50)  # fits: unchanged
    assert fit_lengths(300, 50, 200, LengthPolicy.CLIP) == (150, 50)
    assert fit_lengths(100, 150, 200, LengthPolicy.CLIP) == (50, 150)  # the output is kept whole
    assert fit_lengths(300, 500, 200, LengthPolicy.CLIP) == (1, 199)  # the output alone was too long
    assert fit_lengths(0, 0, 200, LengthPolicy.CLIP) == (1, 1)  # trace zeros become 1
    assert fit_lengths(300, 100, 200, LengthPolicy.SCALE, factor=0.5) == (150, 50)
    assert fit_lengths(30, 10, 200, LengthPolicy.SCALE, factor=0.5) == (15, 5)  # scaled although it fits
    assert fit_lengths(300, 50, 200, LengthPolicy.SKIP) is None
    assert scale_factor([(300, 100), (30, 10)], 200) == 0.5  # the longest request sets it
    assert scale_factor([(30, 10)], 200) == 1.0  # everything fits: nothing is scaled
    for policy in LengthPolicy:
        fitted = fit_lengths(30_000, 700, 4096, policy, scale_factor([(30_000, 700)], 4096))
        assert fitted is None or sum(fitted) <= 4096


def test_scaling_a_trace_keeps_its_length_distribution() -> None:
    """One factor for the whole trace: the output-length median scales with it (a per-request factor collapsed
    it, since every long request was squeezed to fill the context)."""
    trace = read_trace("azure-conv")
    plan = plan_from_trace(trace, Slo(2.0, 0.1), 2000, seed=0, context=1024, policy=LengthPolicy.SCALE, time_scale=1)
    chosen = trace[:2000]
    assert plan.scale_factor == pytest.approx(
        1024 / max(max(1, r.input_tokens) + max(1, r.output_tokens) for r in chosen)
    )
    assert len(plan.requests) == len(chosen) and not plan.skipped_at
    assert all(r.input_tokens + r.output_tokens <= 1024 for r in plan.requests)
    expected = statistics.median(max(1, r.output_tokens) for r in chosen) * plan.scale_factor
    assert statistics.median(r.output_tokens for r in plan.requests) == pytest.approx(expected, rel=0.1)


def test_trace_replay_reports_what_the_policy_changed() -> None:
    trace = read_trace("mooncake")
    slo = Slo(2.0, 0.1)
    skip = plan_from_trace(trace, slo, 200, seed=0, context=4096, policy=LengthPolicy.SKIP, time_scale=0.5)
    clip = plan_from_trace(trace, slo, 200, seed=0, context=4096, policy=LengthPolicy.CLIP, time_scale=0.5)
    too_long = sum(1 for r in trace[:200] if r.input_tokens + r.output_tokens > 4096)
    assert too_long > 0
    assert (len(skip.skipped_at), skip.adjusted, len(skip.requests)) == (too_long, 0, 200 - too_long)
    assert (len(clip.skipped_at), clip.adjusted, len(clip.requests)) == (0, too_long, 200)
    early = [r for r in trace[:200] if r.arrival is not None and r.arrival * 0.5 <= 10.0]
    early_too_long = sum(1 for r in early if r.input_tokens + r.output_tokens > 4096)
    assert 0 < early_too_long < too_long  # the window sees some skipped requests, not all
    assert skip.skipped_within(10.0) == early_too_long
    assert clip.requests[10].send_at == pytest.approx(trace[10].arrival * 0.5)  # type: ignore[operator]


def test_burstgpt_csv(tmp_path: Path) -> None:
    path = tmp_path / "burst.csv"
    path.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45.5,GPT-4,1087,0,1087,API log\n"
    )
    trace = read_trace(str(path))
    assert [(r.arrival, r.input_tokens, r.output_tokens) for r in trace] == [(0.0, 472, 18), (40.5, 1087, 0)]
