"""`make clients`: install each client into its own cached virtual environment, start a tiny cluster in each
mode, run every client for one short constant-rate benchmark (bounded in count and time), then pdsim's own load
generator through the same HTTP API, and write one table beside the router's Prometheus figures for each run.

From each tool's first request, pdsim's own client runs beside it with the same shape and the same constant rate
against the same cluster, so both measure the same server at the same moments: the table compares the tool's ITL
median with that client's of the same kind (`ItlKind`), which a tool that merged or split token events, or timed
them late, would move away from 1.

Writes results/clients/table.md (the table) and results/clients/commands.md (the exact command lines run).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from apps.clients.tools import TOOLS, Figures, ItlKind, Run, Tool
from apps.launcher import ClusterSpec, started_cluster
from apps.loadgen_cli import measure
from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.runner import Api, RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.models.presets import ensure_preset
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig

_REPO = Path(__file__).resolve().parents[2]
TOOL_TIMEOUT = 600.0  # seconds one tool may run, installs excluded
_ACCEPTED = "pdsim_prompt_tokens_total"  # the router's counter that moves as a request is accepted
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eEinfNa]+)$")


def ensure_venv(tool: Tool) -> Path:
    """The tool's virtual environment, created and installed once (a stamp records the packages)."""
    venv = tool.venv()
    stamp = venv / ".pdsim-installed"
    wanted = " ".join(tool.packages)
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv / "bin"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *tool.packages], check=True)
    if tool.remove:
        subprocess.run([str(venv / "bin" / "pip"), "uninstall", "-q", "-y", *tool.remove], check=True)
    stamp.write_text(wanted)
    return venv / "bin"


def server_figures(base: str) -> dict[str, float]:
    """Sums of the router's samples by name, from /metrics on the HTTP port."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and 'role="router"' in (match.group(2) or ""):
            sums[match.group(1)] = sums.get(match.group(1), 0.0) + float(match.group(3))
    return sums


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def d(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    def mean_ms(name: str) -> float:
        count = d(name + "_count")
        return 1000 * d(name + "_sum") / count if count else float("nan")

    return {
        "requests": d("pdsim_time_to_first_token_seconds_count"),
        "output_tokens": d("pdsim_generation_tokens_total"),
        "ttft_ms": mean_ms("pdsim_time_to_first_token_seconds"),
        "itl_ms": mean_ms("pdsim_inter_token_latency_seconds"),
        "tpot_ms": mean_ms("pdsim_request_time_per_output_token_seconds"),
    }


def run_tool(tool: Tool, run: Run, bin_dir: Path, commands: list[str]) -> tuple[Figures | str, Figures | None]:
    """The tool's figures (or why there are none), and those of pdsim's client run beside it: started at the
    tool's first request, not with its process, whose start-up (imports, tokenizers) takes seconds. `bin_dir`:
    the tool's virtual environment's; the command line run is appended to `commands`."""
    run.out.mkdir(parents=True, exist_ok=True)
    argv = tool.argv(run, bin_dir)
    command = " ".join(argv).replace(str(run.out), "OUT").replace(run.base, "http://127.0.0.1:PORT")
    # As a user types it: the tool on PATH, paths under the repository relative, $HOME (not ~: it is no word's start
    # inside GuideLLM's `--tokenizer kind=...,model=PATH`).
    commands.append(command.replace(str(bin_dir) + "/", "").replace(f"{_REPO}/", "").replace(str(Path.home()), "$HOME"))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    env.pop("HF_HUB_OFFLINE", None)
    if tool.offline:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    stdout, stderr = run.out / "stdout.txt", run.out / "stderr.txt"
    beside = None
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env, cwd=run.out)
        try:
            if _first_request(run.base, process, time.monotonic() + TOOL_TIMEOUT):
                # Half a period later: the two clients' requests then alternate evenly at the router, rather than
                # arrive in pairs whose order is up to this poll.
                time.sleep(0.5 / run.rate)
                beside = run_pdsim(dataclasses.replace(run, out=run.out / "pdsim-beside"))
            process.wait(timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"timed out after {TOOL_TIMEOUT:g} s", beside
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0:
        last = stderr.read_text().strip().splitlines()[-1:]
        return f"exit {process.returncode}: {''.join(last)}", beside
    try:
        return tool.read(run, stdout.read_text()), beside
    except (OSError, KeyError, ValueError, IndexError) as error:
        return f"could not read its output: {error!r}", beside


def _first_request(base: str, process: subprocess.Popen[str], deadline: float) -> bool:
    """Wait until the router accepts a request (the tool's first) or the tool exits; True on a request."""
    accepted = server_figures(base).get(_ACCEPTED, 0.0)
    while process.poll() is None and time.monotonic() < deadline:
        if server_figures(base).get(_ACCEPTED, 0.0) > accepted:
            return True
        time.sleep(0.05)
    return False


def run_pdsim(run: Run) -> Figures:
    """pdsim's own client (`--api openai`) with the run's shape and rate; its ITL median of either kind."""
    mix = run.out / "mix.toml"
    run.out.mkdir(parents=True, exist_ok=True)
    mix.write_text(
        '[[classes]]\nname = "fixed"\nweight = 1.0\n'
        f"input = {run.input_tokens}\noutput = {run.output_tokens}\n"
        "slo = { ttft = 10.0, tpot = 1.0 }\nignore_eos = true\n"
    )
    spec = WorkloadSpec(mix=str(mix), arrivals=Arrivals(ArrivalKind.CONSTANT, rate=run.rate), count=run.count)
    limits = RunLimits(duration=run.count / run.rate, warmup=0, request_timeout=120, drain_timeout=120)
    summary = asyncio.run(measure(run.base, spec, limits, run.out, api=Api.OPENAI))
    records = [json.loads(x) for x in (run.out / "requests.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    tokens = sum(sum(r["chunk_tokens"]) for r in ok)
    ms = {k: 1000 * summary[k]["median"] for k in ("ttft_s", "itl_s", "tpot_s")}
    mean_gaps = [(r["chunk_times"][-1] - r["chunk_times"][0]) / (len(r["chunk_times"]) - 1)
                 for r in ok if len(r["chunk_times"]) > 1]  # fmt: skip
    per_request = 1000 * statistics.median(mean_gaps) if mean_gaps else math.nan
    return Figures(summary["completed"], ms["ttft_s"], ms["itl_s"], ms["tpot_s"], tokens, per_request)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.clients.harness", description=__doc__)
    parser.add_argument("--tools", default=",".join([*TOOLS]), help=f"of {', '.join(TOOLS)}")
    parser.add_argument("--modes", default="colocated,disaggregated")
    parser.add_argument("--model", default="tiny")
    parser.add_argument(
        "--device", default="cpu",
        help="the nodes' device; an emulated one (e.g. a profile pdsim calibrate fitted to this CPU) takes the "
        "steps' time without their CPU, which on a small machine the tools' own processes need (runs at dilation 1)",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--input-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--out", default="results/clients")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    tokenizer = ensure_preset(args.model)
    rows: list[str] = []
    commands: list[str] = []
    for mode in args.modes.split(","):
        # Dilation 1: the tools measure wall time, and know nothing of emulated seconds.
        node = NodeConfig(model=ModelSpec(args.model, args.device), emulation=EmulationConfig(dilation=1.0))
        # One colocated worker: both clients' requests share it, alternating, so each client's prompts stall the
        # other's decodes as often as the reverse, and a tool's processes slow both alike. With two workers, which
        # client's requests met which prompts, or shared a core with the tool, was up to routing (GuideLLM's
        # per-request ITL read 0.89-0.92 of the client beside it).
        cluster = ClusterSpec(Mode(mode), workers=1, prefill=1, decode=1, node=node, router_port=0, http_port=0)
        with started_cluster(cluster) as launcher:
            base = "http://" + launcher.children[-1].endpoints["http"]
            for name in [*args.tools.split(","), "pdsim-loadgen"]:
                run = Run(base, args.model, tokenizer, args.rate, args.count, args.input_tokens,
                          args.output_tokens, out / mode / name)  # fmt: skip
                before, started = server_figures(base), time.monotonic()
                beside: Figures | None = None
                if name == "pdsim-loadgen":
                    result: Figures | str = run_pdsim(run)
                else:
                    result, beside = run_tool(TOOLS[name], run, ensure_venv(TOOLS[name]), commands)
                server = _delta(before, server_figures(base))
                kind = TOOLS[name].itl if name in TOOLS else ItlKind.GAPS
                rows.append(_row(mode, name, kind, result, server, time.monotonic() - started, beside))
                print(rows[-1], flush=True)
    header = (
        "| mode | client | completed | TTFT p50 ms | ITL p50 ms | ITL of | TPOT p50 ms | output tokens | pdsim client "
        "beside: ITL p50 ms (same kind) | ITL tool / pdsim | server: requests | server: output tokens | server: mean "
        "TTFT / ITL / TPOT ms | wall s |\n|" + "---|" * 14
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(header + "\n" + "\n".join(rows) + "\n")
    (out / "commands.md").write_text("\n".join(f"    {c}" for c in dict.fromkeys(commands)) + "\n")
    print(f"wrote {out / 'table.md'} and {out / 'commands.md'}")
    return 0


def _row(
    mode: str, name: str, kind: ItlKind, result: Figures | str, server: dict[str, float], wall: float,
    beside: Figures | None,
) -> str:  # fmt: skip
    """The server's columns count both clients of a tool's run (the tool's requests and those beside it)."""
    means = f"{server['ttft_ms']:.1f} / {server['itl_ms']:.1f} / {server['tpot_ms']:.1f}"
    tail = f"{server['requests']:.0f} | {server['output_tokens']:.0f} | {means} | {wall:.0f} |"
    ours = beside.itl_of(kind) if beside is not None else math.nan
    if isinstance(result, str):
        return f"| {mode} | {name} | failed: {result} | | | {kind} | | | {_ms(ours)} | | {tail}"
    r = result
    ratio = f"{r.itl_ms / ours:.2f}" if ours > 0 else "–"
    return (
        f"| {mode} | {name} | {r.completed} | {r.ttft_ms:.1f} | {r.itl_ms:.1f} | {kind} | {r.tpot_ms:.1f} | "
        f"{r.output_tokens} | {_ms(ours)} | {ratio} | {tail}"
    )


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
