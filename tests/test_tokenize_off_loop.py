"""The router tokenizes off its event loop, and the tokenizer lets the loop run meanwhile (it releases the GIL).

A model with a long context accepts prompts of megabytes: tokenizing one takes most of a second, which on the
event loop (or on a thread that held the GIL) froze every other client's stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pdsim.core.requests import ModelLimits, SamplingParams
from pdsim.core.slo import SloTable
from pdsim.metrics import MetricsConfig, MetricsEndpoint, RouterMetrics, SeriesLabels
from pdsim.models.presets import ensure_preset
from pdsim.tracing import Tracing
from router.client_errors import ErrorScrubber
from router.detokenizer import RouterTokenizer
from router.frontend import Frontend
from router.modes import RoutedRequest, Tokens

PROMPT = "the quick brown fox jumps over the lazy dog. " * 25_000  # ~1.1 MB: ~0.7 s to tokenize here
MAX_LOOP_GAP = 0.1  # seconds the event loop may go without running a ready task


class _NoNodes:
    async def generate(self, request: RoutedRequest) -> AsyncGenerator[Tokens, None]:
        raise AssertionError("admit only")
        yield  # pragma: no cover


async def _ticks(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


def test_a_megabyte_prompt_is_tokenized_while_the_event_loop_runs(models_dir: Path) -> None:
    tokenizer = RouterTokenizer(ensure_preset("tiny"))
    limits = ModelLimits(max_context=4_000_000, vocab_size=259)  # a context this long takes the whole prompt
    metrics = RouterMetrics(
        MetricsEndpoint(MetricsConfig(enabled=False)).registry, SeriesLabels("m", "r", "i"), SloTable()
    )

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as threads:
            frontend = Frontend(_NoNodes(), tokenizer, limits, 16, metrics, threads, ErrorScrubber({}), Tracing("r"))
            gaps: list[float] = []
            stop = asyncio.Event()
            ticker = asyncio.create_task(_ticks(gaps, stop))
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            admitted = await frontend.admit(PROMPT, SamplingParams(), started)
            took = time.perf_counter() - started
            stop.set()
            await ticker
        assert len(admitted.routed.prompt_ids) == len(PROMPT.encode())  # one token a byte
        print(f"tokenized {len(PROMPT)} bytes in {took:.2f} s; longest event-loop gap {max(gaps):.3f} s")
        assert max(gaps) < MAX_LOOP_GAP, f"the event loop stalled {max(gaps):.2f} s while tokenizing took {took:.2f} s"

    asyncio.run(scenario())
