"""Steps recorded while serving (`--record-steps`), read back for `pdsim calibrate --from-steps`."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from pdsim.core.emulation.fit import recorded_steps, split_held_out
from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster, node_config
from tests.rpc_client import complete, sampling


def test_a_node_records_each_steps_shape_and_seconds(tmp_path: Path) -> None:
    config = dataclasses.replace(node_config(), record_steps=str(tmp_path))

    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, config=config) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            prompt = pb.TokenIds(ids=list(range(1, 41)))
            await complete(stub, pb.GenerateRequest(token_ids=prompt, sampling=sampling(5)))

    asyncio.run(scenario())
    prefill = recorded_steps((next(tmp_path.glob("prefill-*.jsonl"))).read_text().splitlines(), "prefill")
    decode = recorded_steps((next(tmp_path.glob("decode-*.jsonl"))).read_text().splitlines(), "decode")
    assert [tuple((s.new, s.cached) for s in step.segments) for step in prefill] == [((40, 0),)]
    # The first token came from the prefill node: the decode node computes tokens 2..5 at positions 40..43.
    assert [step.segments[0].cached for step in decode] == [40, 41, 42, 43]
    assert all(step.seconds > 0 for step in (*prefill, *decode))


def test_a_line_that_is_no_step_is_refused_by_number() -> None:
    with pytest.raises(ValueError, match="decode line 2 is not a recorded step"):
        recorded_steps(['{"phase": "decode", "seconds": 0.01, "segments": [[1, 5]]}', '{"seconds": 1}'], "decode")


def test_every_fifth_step_is_held_out() -> None:
    line = '{"phase": "decode", "seconds": 0.01, "segments": [[1, 5]]}'
    train, held = split_held_out(recorded_steps([line] * 20), every=5)
    assert len(train) == 16 and len(held) == 4
