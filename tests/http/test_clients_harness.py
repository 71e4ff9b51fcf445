"""`make clients` runs a tool and pdsim's client beside it: here with the OpenAI SDK script in this interpreter
(the harness installs each tool into a virtual environment of its own; the SDK is a test dependency already)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from apps.clients.harness import run_tool, server_figures
from apps.clients.tools import TOOLS, Figures, ItlKind, Run
from pdsim.core.topology import Mode
from tests.cluster import cluster
from tests.http.helpers import MODEL


def test_a_tool_and_the_client_beside_it_count_the_same_tokens(tmp_path: Path) -> None:
    commands: list[str] = []

    async def scenario() -> tuple[Figures | str, Figures | None, float]:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c:
            base = c.base_url.removesuffix("/v1")
            run = Run(base, MODEL, tmp_path, rate=8.0, count=6, input_tokens=12, output_tokens=10, out=tmp_path / "sdk")
            venv = Path(sys.executable).parent
            result, beside = await asyncio.to_thread(run_tool, TOOLS["openai"], run, venv, commands)
            served = await asyncio.to_thread(server_figures, base)
            return result, beside, served["pdsim_generation_tokens_total"]

    result, beside, served = asyncio.run(scenario())
    assert isinstance(result, Figures), result
    assert beside is not None
    assert result.completed == beside.completed == 6
    assert result.output_tokens == beside.output_tokens == 60  # one token per event, EOS ignored
    assert served == 120  # the server streamed both clients' tokens
    for figures in (result, beside):
        assert figures.ttft_ms > 0 and figures.itl_ms > 0 and figures.tpot_ms > 0
    assert beside.itl_of(ItlKind.PER_REQUEST) > 0 and beside.itl_of(ItlKind.GAPS) == beside.itl_ms
    # As a user would type it: the script relative to the repository, the port a placeholder.
    assert commands == [
        "python apps/clients/sdk_bench.py --base-url http://127.0.0.1:PORT/v1 --model tiny --rate 8.0 --count 6 "
        "--input-words 2 --output-tokens 10"
    ]
