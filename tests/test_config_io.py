"""A config survives the JSON the launcher hands a child, and `--config` plus flags resolves as a user expects."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from apps.cli import parse_args
from apps.cli.flags import node_config_from
from apps.cli.serve import router_config_from
from apps.config_io import config_from_json, config_to_json, write_config
from pdsim.core.slo import Slo, SloTable
from pdsim.core.topology import Mode, Role
from pdsim.engine.config import EngineConfig, SchedulePolicy
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.metrics import MetricsConfig
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig
from router.config import Policy, RouterConfig

NODE = NodeConfig(
    host="0.0.0.0",
    port=50071,
    cpus=(2, 3),
    model=ModelSpec("small", "cuda:1", "bfloat16", 512),
    engine=EngineConfig(
        max_batch=3,
        prefill_token_budget=777,
        step_token_budget=99,
        policy=SchedulePolicy.DECODE_FIRST,
        max_waiting=9,
        kv_lease_seconds=2.5,
        kv_push_stall_seconds=1.5,
        staging_tokens=1234,
    ),
    default_max_tokens=33,
    kv_chunk_bytes=65536,
    kv_push_timeout=7.5,
    metrics=MetricsConfig(
        enabled=False, host="0.0.0.0", port=9400, instance="decode-a", otlp_endpoint="127.0.0.1:4317"
    ),
    drain_seconds=0.5,
    emulation=EmulationConfig(tp=4, link="roce-100g", dilation=25.0),
    record_steps="/tmp/steps",
)
ROUTER = RouterConfig(
    mode=Mode.DISAGGREGATED,
    prefill=("10.0.0.1:1", "10.0.0.2:2"),
    decode=("10.0.0.3:3",),
    policy=Policy.ROUND_ROBIN,
    host="0.0.0.0",
    port=6000,
    http_host="0.0.0.0",
    http_port=None,
    tokenizer="/models/tok",
    served_model_name="llama",
    api_key="secret",
    connect_timeout=5.0,
    load_poll_seconds=0.5,
    probe_timeout=0.75,
    request_timeout=42.0,
    slos=SloTable(Slo(1.5, 0.05, 9.0), {"chat": Slo(0.5, 0.02)}),
    metrics=MetricsConfig(enabled=False, host="0.0.0.0", port=9500, instance="r", otlp_endpoint="collector:4317"),
    drain_seconds=3.0,
)
# The configs whose every field NODE and ROUTER change (a router needs a mode and nodes).
BASELINES = {NodeConfig: NodeConfig(), RouterConfig: RouterConfig(mode=Mode.COLOCATED, workers=("127.0.0.1:1",))}


def _leaves(config: Any, path: str = "") -> dict[str, Any]:
    """Every field of `config`, nested ones included, by dotted path."""
    if not dataclasses.is_dataclass(config):
        return {path: config}
    found: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        found |= _leaves(getattr(config, f.name), f"{path}.{f.name}" if path else f.name)
    return found


@pytest.mark.parametrize("config", [NODE, ROUTER], ids=["node", "router"])
def test_every_field_survives_a_round_trip(config: Any) -> None:
    baseline = _leaves(BASELINES[type(config)])
    assert [path for path, value in _leaves(config).items() if value == baseline[path]] == []  # all non-default
    text = config_to_json(config)
    assert json.loads(text)  # readable JSON, not pickle
    assert config_from_json(type(config), text) == config


def test_a_bad_value_or_an_unknown_field_names_itself() -> None:
    with pytest.raises(ValueError, match="max_batch must be > 0, got 0"):  # __post_init__ still runs
        config_from_json(NodeConfig, '{"engine": {"max_batch": 0}}')
    with pytest.raises(ValueError, match=r"unknown field\(s\) engine.max_btch"):
        config_from_json(NodeConfig, '{"engine": {"max_btch": 4}}')
    assert config_from_json(NodeConfig, "{}") == NodeConfig()  # what a file leaves out takes the defaults


def test_flags_given_on_the_command_line_override_the_config_file(tmp_path: Path) -> None:
    path = write_config(NODE, tmp_path / "node.json")
    flags = ["--port", "0", "--kv-lease", "5", "--schedule=prefill-first", "--step-token-budget", "64"]
    args = parse_args(["decode", "--config", str(path), *flags])
    assert args.role is Role.DECODE
    engine = dataclasses.replace(
        NODE.engine, kv_lease_seconds=5.0, policy=SchedulePolicy.PREFILL_FIRST, step_token_budget=64
    )
    assert node_config_from(args) == dataclasses.replace(NODE, port=0, engine=engine)

    path = write_config(ROUTER, tmp_path / "router.json")
    args = parse_args(["router", "--config", str(path), "--routing", "least-loaded", "--http-port", "0"])
    assert router_config_from(args) == dataclasses.replace(ROUTER, policy=Policy.LEAST_LOADED, http_port=0)


def test_without_a_config_file_the_flags_default_to_the_dataclasses() -> None:
    assert node_config_from(parse_args(["colocated"])) == NodeConfig()
    assert parse_args(["worker"]).role is Role.COLOCATED  # the old name still runs
    router = router_config_from(parse_args(["router", "--workers", "127.0.0.1:1"]))
    assert router == RouterConfig(mode=Mode.COLOCATED, workers=("127.0.0.1:1",))
