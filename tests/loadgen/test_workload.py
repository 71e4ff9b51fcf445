from __future__ import annotations

import itertools
import random
import statistics
from pathlib import Path

import pytest

from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.mix import load_mix
from loadgen.spec import WorkloadSpec
from loadgen.workload import LengthPolicy, plan_from_mix


@pytest.mark.parametrize("name", ["chat", "summarize", "mixed", "sharegpt"])
def test_shipped_mixes_load(name: str) -> None:
    mix = load_mix(name)
    assert mix.classes and all(c.slo.ttft > 0 and c.slo.tpot > 0 for c in mix.classes)


def test_a_plan_is_reproducible_from_its_seed() -> None:
    mix = load_mix("mixed")
    # A context below the mix's longest requests (2,548 tokens), so the length policy has work to do.
    a = plan_from_mix(mix, Arrivals(rate=3), 50, seed=7, context=2048, policy=LengthPolicy.CLIP)
    b = plan_from_mix(mix, Arrivals(rate=3), 50, seed=7, context=2048, policy=LengthPolicy.CLIP)
    c = plan_from_mix(mix, Arrivals(rate=3), 50, seed=8, context=2048, policy=LengthPolicy.CLIP)
    assert a.requests == b.requests and a.prompt(a.requests[3]) == b.prompt(b.requests[3])
    assert a.requests != c.requests
    assert {r.request_class for r in a.requests} == {"chat", "summarize"}
    assert all(r.input_tokens + r.output_tokens <= 2048 for r in a.requests)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_arrival_processes() -> None:
    rng = random.Random(0)
    poisson = gaps(Arrivals(ArrivalKind.POISSON, rate=4).offsets(rng, 4000))
    assert statistics.mean(poisson) == pytest.approx(0.25, rel=0.05)
    assert statistics.stdev(poisson) / statistics.mean(poisson) == pytest.approx(1.0, rel=0.08)  # CV of exponential
    bursty = gaps(Arrivals(ArrivalKind.GAMMA, rate=4, burstiness=0.25).offsets(rng, 4000))
    assert statistics.mean(bursty) == pytest.approx(0.25, rel=0.1)
    assert statistics.stdev(bursty) / statistics.mean(bursty) == pytest.approx(2.0, rel=0.15)  # CV = 1/sqrt(shape)
    assert gaps(Arrivals(ArrivalKind.CONSTANT, rate=5).offsets(rng, 4)) == pytest.approx([0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="rate must be > 0"):
        Arrivals(rate=0)


def test_bad_mix_files_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[classes]]\nname = "x"\ninput = { dist = "zipf" }\noutput = 4\nslo = { ttft = 1, tpot = 1 }\n')
    with pytest.raises(ValueError, match="unknown dist 'zipf'"):
        load_mix(str(bad))
    bad.write_text('[[classes]]\nname = "x"\ninput = 4\noutput = 4\n')
    with pytest.raises(ValueError, match="needs slo"):
        load_mix(str(bad))
    yaml_mix = tmp_path / "mine.yaml"
    yaml_mix.write_text(
        "classes:\n  - {name: a, input: 8, output: {dist: uniform, low: 2, high: 4}, slo: {ttft: 1, tpot: 0.2}}\n"
    )
    assert load_mix(str(yaml_mix)).classes[0].name == "a"


def test_a_sweep_sends_the_same_requests_at_every_rate_only_sooner() -> None:
    mix = load_mix("mixed")
    slow = plan_from_mix(mix, Arrivals(rate=1), 40, seed=3, context=4096, policy=LengthPolicy.CLIP)
    fast = plan_from_mix(mix, Arrivals(rate=4), 80, seed=3, context=4096, policy=LengthPolicy.CLIP)
    key = [(r.request_class, r.input_tokens, r.output_tokens, r.prompt_seed) for r in slow.requests]
    assert key == [(r.request_class, r.input_tokens, r.output_tokens, r.prompt_seed) for r in fast.requests[:40]]
    assert fast.requests[10].send_at == pytest.approx(slow.requests[10].send_at / 4)  # type: ignore[operator]


def test_a_trace_without_times_takes_the_requested_arrivals() -> None:
    spec = WorkloadSpec(trace="sharegpt", arrivals=Arrivals(ArrivalKind.CONSTANT, rate=4))
    assert not spec.times_from_trace
    plan = spec.plan(context=4096, duration=30)
    assert plan.requests[8].send_at == pytest.approx(2.0)
    assert "constant at 4 req/s" in spec.describe()


def test_the_request_count_follows_the_duration_unless_given() -> None:
    assert WorkloadSpec(arrivals=Arrivals(rate=4)).request_count(duration=60) >= 240
    assert WorkloadSpec(arrivals=Arrivals(rate=4), count=10).request_count(duration=60) == 10
    assert WorkloadSpec(trace="azure-code").request_count(duration=60) == 8819  # the duration ends it
