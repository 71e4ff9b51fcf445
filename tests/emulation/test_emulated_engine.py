"""The emulated runner and KV store: modeled step times, deterministic tokens, admission by memory."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from pdsim.core.emulation.capacity import kv_capacity
from pdsim.core.emulation.costs import Segment
from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.step_time import decode_step, step_time
from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import SamplingParams
from pdsim.core.topology import Role
from pdsim.engine.config import EngineConfig
from pdsim.engine.emulated.build import build_emulated_engine
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.engine.emulated.kv_store import AccountingKvStore
from pdsim.engine.emulated.runner import EmulatedRunner
from pdsim.engine.emulated.tokens import PRINTABLE, UNIFORM_LOGPROB, emulated_token
from pdsim.engine.request import Request
from pdsim.engine.running_batch import RunningBatch
from pdsim.engine.step import DecodeRow, PrefillRow, SamplingRow, StepInput
from pdsim.models.spec import ModelSpec

H100 = load_profile("h100-sxm")
LLAMA_8B = load_model_config("llama-3.1-8b").shape
LAYOUT = KvLayout(LLAMA_8B.layers, LLAMA_8B.kv_heads, LLAMA_8B.head_dim, "bfloat16")


def _runner(dilation: float = 1.0) -> tuple[EmulatedRunner, list[float]]:
    slept: list[float] = []
    store = AccountingKvStore(LAYOUT, 8, 8192, 10**6)
    return EmulatedRunner(store, H100, LLAMA_8B, "bfloat16", 1, dilation, sleep=slept.append), slept


def _row(seed: int, index: int, **params: object) -> SamplingRow:
    return SamplingRow(SamplingParams(**params), seed, index)  # type: ignore[arg-type]


def test_a_step_sleeps_its_modeled_time_times_the_dilation() -> None:
    runner, slept = _runner(dilation=10)
    rows = [DecodeRow(65, 1023, _row(1, 5)), DecodeRow(66, 511, _row(2, 3))]
    runner.run(StepInput.decode(rows))
    modeled = decode_step(H100, LLAMA_8B, [1023, 511], "bfloat16").seconds
    assert slept and math.isclose(slept[0], 10 * modeled, rel_tol=0.05)  # less the step's own bookkeeping
    # A mixed step is costed as one forward over both kinds of segment.
    chunk = PrefillRow(2, list(range(100)), None, start=300)
    output = runner.run(StepInput([rows[0]], [chunk]))
    mixed = step_time(H100, LLAMA_8B, [Segment(1, 1023), Segment(100, 300)], "bfloat16").seconds
    assert output.modeled_seconds is not None and output.modeled_seconds == pytest.approx(mixed)


def test_tokens_depend_only_on_the_seed_and_position_whatever_the_batch() -> None:
    runner, _ = _runner()
    prompt = list(range(40))
    alone = runner.run(StepInput.prefill([PrefillRow(0, prompt, _row(7, 0))])).tokens
    # The same request's first token from its last chunk, beside a decode of another request.
    chunked = runner.run(StepInput([DecodeRow(70, 9, _row(3, 2))], [PrefillRow(1, prompt[30:], _row(7, 0), 30)]))
    assert chunked.tokens[1] == alone[0]
    # Its next token on a decode node: position 41, index 1.
    next_token = runner.run(StepInput.decode([DecodeRow(alone[0], 40, _row(7, 1))])).tokens[0]
    assert next_token == emulated_token(_row(7, 1), 41)
    assert all(t in PRINTABLE for t in (*alone, next_token))
    other_seed = [emulated_token(_row(8, 0), p) for p in range(40, 60)]
    assert other_seed != [emulated_token(_row(7, 0), p) for p in range(40, 60)]


def test_a_stop_token_is_skipped_until_min_tokens() -> None:
    row = _row(7, 0)
    token = emulated_token(row, 40)
    assert emulated_token(_row(7, 0, stop_token_ids=[token], min_tokens=1), 40) != token
    assert emulated_token(_row(7, 1, stop_token_ids=[token], min_tokens=1), 40) == token


def test_logprobs_are_the_uniform_distributions_and_only_when_asked() -> None:
    runner, _ = _runner()
    plain = runner.run(StepInput.decode([DecodeRow(65, 10, _row(1, 1))]))
    assert plain.logprobs is None
    asked = runner.run(StepInput.decode([DecodeRow(65, 10, _row(1, 1)), DecodeRow(65, 10, _row(2, 1, logprobs=3))]))
    assert asked.logprobs is not None and asked.logprobs[0] is None
    entry = asked.logprobs[1]
    assert entry is not None and entry.logprob == pytest.approx(UNIFORM_LOGPROB) == -math.log(95)
    assert len(entry.top) == 3 and entry.top[0][0] == asked.tokens[1]


def _request(name: str, prompt: int, max_tokens: int) -> Request:
    return Request(name, SamplingParams(max_tokens=max_tokens), 0, lambda _: None, prompt_len=prompt)


def test_the_running_batch_admits_only_what_the_memory_holds() -> None:
    store = AccountingKvStore(LAYOUT, num_slots=8, max_tokens=4096, capacity_tokens=3000)
    batch = RunningBatch(store)
    first = _request("a", 1000, 500)
    assert batch.has_room(first)
    batch.admit(first)
    assert batch.has_room(_request("b", 1000, 500))  # 3,000 tokens: exactly full
    assert not batch.has_room(_request("c", 1000, 501))
    assert not batch.has_room(_request("d", 5000, 10))  # capped at a slot's 4,096 tokens, still too many


def test_an_emulated_engine_is_sized_by_the_profiles_memory() -> None:
    spec = ModelSpec("llama-3.1-8b", "emulated:a100-80gb", "bfloat16", max_context=4096)
    built = build_emulated_engine(Role.DECODE, spec, EngineConfig(max_batch=256), EmulationConfig(dilation=1))
    tokens = kv_capacity(load_profile("a100-80gb"), LLAMA_8B, "bfloat16").tokens
    assert built.store.capacity_tokens == tokens  # fewer than 256 slots x 4,096
    assert built.store.capacity_bytes == tokens * LAYOUT.bytes_per_token
    assert built.info.limits.max_context == 4096 and built.info.wire_layout.bytes_per_token == 4
    assert built.info.fingerprint.startswith("emu-")


def test_an_emulated_device_that_is_not_known_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown hardware profile 'h900'"):
        ModelSpec("llama-3.1-8b", "emulated:h900")
    with pytest.raises(ValueError, match="llama-9"):
        ModelSpec("llama-9", "emulated:h100-sxm")
    with pytest.raises(ValueError, match=r"dilation must be a number >= 1, got 0\.5"):
        EmulationConfig(dilation=0.5)
    with pytest.raises(ValueError, match="unknown link 'carrier-pigeon'"):
        EmulationConfig(link="carrier-pigeon")


def test_an_emulated_node_never_imports_torch() -> None:
    """Its engine, KV protocol and servers run without torch (16 of them fit on a laptop)."""
    code = (
        "import sys, asyncio\n"
        "from pdsim.models.spec import ModelSpec\n"
        "from pdsim.node.config import NodeConfig\n"
        "from decode_node.service import DecodeNodeServer\n"
        "from prefill_node.service import PrefillNodeServer\n"
        "from router.server import RouterServer\n"
        "config = NodeConfig(model=ModelSpec('llama-3.1-8b', 'emulated:h100-sxm', 'bfloat16', 4096))\n"
        "async def main():\n"
        "    for server in (PrefillNodeServer(config), DecodeNodeServer(config)):\n"
        "        await server.start()\n"
        "        await server.stop(0)\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
