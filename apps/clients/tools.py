"""The four clients the harness runs, each as its users run it: how it is installed, its command line, and where
its own figures (requests completed, TTFT/ITL/TPOT medians, output tokens) are read from its output."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

CLIENTS_DIR = Path.home() / ".cache" / "pdsim" / "clients"


@dataclass(frozen=True, slots=True)
class Run:
    """One short constant-rate benchmark, the same for every tool."""

    base: str  # http://127.0.0.1:PORT
    model: str
    tokenizer: Path  # the preset's directory, for tools that count tokens offline
    rate: float
    count: int
    input_tokens: int
    output_tokens: int
    out: Path  # the tool's own output directory


class ItlKind(StrEnum):
    """What a tool's ITL median is the median of; the harness compares it with pdsim's client's of the same kind."""

    GAPS = "gaps"  # every gap between streamed chunks, of every request (vLLM, AIPerf's ICL, pdsim, the SDK script)
    PER_REQUEST = "per request"  # each request's mean gap, (last - first token) / (tokens - 1) (GuideLLM's)


@dataclass(frozen=True, slots=True)
class Figures:
    completed: int
    ttft_ms: float
    itl_ms: float  # the client's own ITL median (of its `ItlKind`)
    tpot_ms: float
    output_tokens: int
    itl_per_request_ms: float = math.nan  # pdsim's client: the median of its requests' mean gaps, too

    def itl_of(self, kind: ItlKind) -> float:
        """pdsim's client's ITL median of `kind`."""
        return self.itl_per_request_ms if kind is ItlKind.PER_REQUEST else self.itl_ms


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    packages: tuple[str, ...]  # pip requirements for its virtual environment
    argv: Callable[[Run, Path], list[str]]  # (run, the venv's bin directory) -> command line
    read: Callable[[Run, str], Figures]  # (run, its stdout) -> its figures
    remove: tuple[str, ...] = ()  # uninstalled after the install: wheels built for a CUDA torch
    offline: bool = True  # HF_HUB_OFFLINE=1; aiperf then looks a local tokenizer path up as a hub repo id
    itl: ItlKind = ItlKind.GAPS

    def venv(self) -> Path:
        return CLIENTS_DIR / self.name


# vLLM's and AIPerf's request rates are Poisson unless told otherwise. Their bursts put their requests in bigger
# batches than pdsim's evenly spaced client beside them sees: a real difference in what the requests went through
# (20% in ITL on two cores), not in how it was measured. So every client here sends at a constant rate.
def _vllm_argv(run: Run, bin_dir: Path) -> list[str]:
    return [
        str(bin_dir / "vllm"), "bench", "serve", "--backend", "openai", "--base-url", run.base,
        "--model", run.model, "--tokenizer", str(run.tokenizer), "--dataset-name", "random",
        "--random-input-len", str(run.input_tokens), "--random-output-len", str(run.output_tokens),
        "--num-prompts", str(run.count), "--request-rate", str(run.rate), "--burstiness", "inf", "--ignore-eos",
        "--percentile-metrics", "ttft,tpot,itl", "--save-result", "--result-dir", str(run.out),
        "--result-filename", "vllm.json",
    ]  # fmt: skip


def _vllm_read(run: Run, stdout: str) -> Figures:
    data = json.loads((run.out / "vllm.json").read_text())
    return Figures(
        data["completed"], data["median_ttft_ms"], data["median_itl_ms"], data["median_tpot_ms"],
        data["total_output_tokens"],
    )  # fmt: skip


def _sdk_argv(run: Run, bin_dir: Path) -> list[str]:
    script = Path(__file__).with_name("sdk_bench.py")
    return [
        str(bin_dir / "python"), str(script), "--base-url", run.base + "/v1", "--model", run.model,
        "--rate", str(run.rate), "--count", str(run.count), "--input-words", str(run.input_tokens // 6),
        "--output-tokens", str(run.output_tokens),
    ]  # fmt: skip


def _sdk_read(run: Run, stdout: str) -> Figures:
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return Figures(data["completed"], data["ttft_ms"], data["itl_ms"], data["tpot_ms"], data["output_tokens"])


def _aiperf_argv(run: Run, bin_dir: Path) -> list[str]:
    # --use-server-token-count: AIPerf otherwise re-tokenizes each response's text, which came out ~1% short here.
    return [
        str(bin_dir / "aiperf"), "profile", "--model", run.model, "--url", run.base, "--endpoint-type", "completions",
        "--streaming", "--tokenizer", str(run.tokenizer), "--synthetic-input-tokens-mean", str(run.input_tokens),
        "--output-tokens-mean", str(run.output_tokens), "--request-rate", str(run.rate), "--arrival-pattern",
        "constant", "--request-count", str(run.count), "--extra-inputs", "ignore_eos:true", "--use-server-token-count",
        "--artifact-dir", str(run.out), "--ui-type", "none",
    ]  # fmt: skip


def _aiperf_read(run: Run, stdout: str) -> Figures:
    data = json.loads((run.out / "profile_export_aiperf.json").read_text())
    chunk_gaps = data["inter_chunk_latency"]  # every gap (its `inter_token_latency` is a per-request mean)
    return Figures(
        int(data["request_count"]["avg"]), data["time_to_first_token"]["p50"], chunk_gaps["p50"],
        data["inter_token_latency"]["p50"], int(data["total_output_tokens"]["avg"]),
    )  # fmt: skip


def _guidellm_argv(run: Run, bin_dir: Path) -> list[str]:
    # Text completions: GuideLLM's default, chat, sends its 64-token prompts through the chat template (88 tokens).
    return [
        str(bin_dir / "guidellm"), "run", "--backend",
        f"kind=openai_http,target={run.base},model={run.model},request_format=/v1/completions",
        "--profile", f"kind=constant,rate={run.rate:g}", "--constraint", f"kind=max_requests,count={run.count}",
        "--tokenizer", f"kind=huggingface_auto,model={run.tokenizer}",
        "--data", f"kind=synthetic_text,prompt_tokens={run.input_tokens},output_tokens={run.output_tokens}",
    ]  # fmt: skip


def _guidellm_read(run: Run, stdout: str) -> Figures:
    metrics = json.loads((run.out / "benchmarks.json").read_text())["benchmarks"][0]["metrics"]

    def median(name: str) -> float:
        return float(metrics[name]["successful"]["median"])

    return Figures(
        metrics["request_totals"]["successful"], median("time_to_first_token_ms"), median("inter_token_latency_ms"),
        median("time_per_output_token_ms"), int(metrics["output_token_count"]["successful"]["total_sum"]),
    )  # fmt: skip


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        # vLLM's wheel brings torchvision, torchaudio and torchcodec built against its own torch, which fail to
        # load beside the CPU torch pin; `vllm bench serve` needs none of them.
        Tool("vllm", ("vllm", "torch==2.13.0"), _vllm_argv, _vllm_read, ("torchvision", "torchaudio", "torchcodec")),
        Tool("guidellm", ("guidellm", "torch==2.13.0"), _guidellm_argv, _guidellm_read, itl=ItlKind.PER_REQUEST),
        Tool("aiperf", ("aiperf",), _aiperf_argv, _aiperf_read, offline=False),
        Tool("openai", ("openai",), _sdk_argv, _sdk_read),
    )
}
