"""The command line's defaults are the dataclasses' own: with no flags, each command builds the default config."""

from __future__ import annotations

import dataclasses

import pytest

from apps.arms import arms_named
from apps.cli import parse_args
from apps.cli.cluster import cluster_spec_from, experiment_config_from
from apps.cli.serve import router_config_from
from apps.experiment import ExperimentConfig
from apps.launcher import ClusterSpec, default_targets_dir
from apps.launcher.cluster import router_config
from apps.loadgen_cli import limits_from, workload_from
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode, Role
from pdsim.engine.config import SchedulePolicy
from router.config import Policy


def test_up_with_no_flags_is_the_default_cluster() -> None:
    spec = cluster_spec_from(parse_args(["up", "--mode", "disaggregated"]))
    assert spec == ClusterSpec(Mode.DISAGGREGATED, targets_dir=default_targets_dir())
    assert cluster_spec_from(parse_args(["up", "--mode", "colocated", "--no-http", "--no-metrics"])).http_port is None


def test_make_compare_with_no_overrides_runs_the_default_experiment() -> None:
    config, defaults = experiment_config_from(parse_args(["compare"])), ExperimentConfig()
    assert config == dataclasses.replace(defaults, workload=defaults.workload_at(defaults.rate))
    assert (config.model.model, config.model.dtype, config.workload.mix) == ("small", "bfloat16", "mixed")
    assert config.rate == 1.5
    assert (config.rates, config.workers, config.prefill, config.decode) == ((0.5, 1, 1.5, 2), 2, 1, 1)
    assert (config.limits.duration, config.workload.seed) == (30, 0)
    assert config.arms == ("colocated", "colocated-prefill-first", "disaggregated")
    overridden = experiment_config_from(parse_args(["compare", "--model", "tiny", "--rates", "1,2"]))
    assert (overridden.model.model, overridden.rates, overridden.model.dtype) == ("tiny", (1, 2), "bfloat16")
    two = experiment_config_from(parse_args(["compare", "--arms", "colocated-decode-first,disaggregated"]))
    assert [(a.name, a.mode, a.schedule) for a in arms_named(two.arms)] == [
        ("colocated-decode-first", Mode.COLOCATED, SchedulePolicy.DECODE_FIRST),
        ("disaggregated", Mode.DISAGGREGATED, None),
    ]
    assert two.engine(arms_named(two.arms)[0]).policy is SchedulePolicy.DECODE_FIRST
    with pytest.raises(ValueError, match=r"arms must be some of colocated, .*; got colocated, fast"):
        experiment_config_from(parse_args(["compare", "--arms", "colocated,fast"]))


def test_loadgen_with_no_flags_is_the_default_workload() -> None:
    args = parse_args(["loadgen"])
    assert (workload_from(args), limits_from(args)) == (WorkloadSpec(), RunLimits())


def test_one_flag_name_per_meaning() -> None:
    assert parse_args(["router", "--workers", "127.0.0.1:1", "--routing", "round-robin"]).routing is Policy.ROUND_ROBIN
    assert parse_args(["up", "--mode", "colocated", "--routing", "round-robin"]).routing is Policy.ROUND_ROBIN
    assert parse_args(["compare", "--routing", "round-robin"]).routing is Policy.ROUND_ROBIN


def test_compare_with_repeats_and_a_capacity_search_fits_in_twenty_minutes() -> None:
    from apps.experiment import expected_time

    config = experiment_config_from(parse_args(["compare", "--find-capacity", "--repeats", "3"]))
    assert (config.repeats, config.find_capacity, config.sweep()) == (3, True, (1.0, 1.5))
    assert (config.capacity.max_probes, config.capacity.probe_duration, config.capacity.tolerance) == (6, 20.0, 0.05)
    assert config.probe_limits().duration == 20.0 and config.limits.duration == 30.0
    plan = expected_time(config, len(config.arms), len(config.sweep()))
    assert plan.startswith("3 arms x 2 rates x 3 repeats = 18 runs of 30 s, and up to 6 capacity probes of 20 s")
    minutes = int(plan.split("about ")[1].split(" min")[0])
    assert minutes < 20, plan
    # The plain default: the four-rate sweep, once, as the 7 min 10 s measured.
    plain = experiment_config_from(parse_args(["compare"]))
    assert plain.sweep() == (0.5, 1.0, 1.5, 2.0) and "about 7 min" in expected_time(plain, 3, 4)
    # A sweep asked for is run when repeating too; bad settings are refused by name.
    asked = experiment_config_from(parse_args(["compare", "--repeats", "2", "--rates", "1,3"]))
    assert asked.sweep() == (1.0, 1.5, 3.0)
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        experiment_config_from(parse_args(["compare", "--repeats", "0"]))
    with pytest.raises(ValueError, match="probe duration must be > 0 s, got -1"):
        experiment_config_from(parse_args(["compare", "--probe-duration", "-1"]))


def test_the_api_key_and_served_name_reach_the_router_from_up_and_router() -> None:
    args = ["--api-key", "k3y", "--served-model-name", "llama"]
    spec = cluster_spec_from(parse_args(["up", "--mode", "colocated", *args]))
    config = router_config(spec, {Role.COLOCATED: ["127.0.0.1:1"]})
    assert (config.api_key, config.served_model_name) == ("k3y", "llama")
    config = router_config_from(parse_args(["router", "--workers", "127.0.0.1:1", *args]))
    assert (config.api_key, config.served_model_name) == ("k3y", "llama")
    assert router_config_from(parse_args(["router", "--workers", "127.0.0.1:1"])).api_key is None
