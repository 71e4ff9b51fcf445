"""Readers for public request traces: each gives (arrival time, input tokens, output tokens) per request.

Formats (see loadgen/trace_data/README.md): the Azure LLM inference traces (2023 and 2024 CSVs), Mooncake's JSONL
(with each request's prefix-block hash ids), ShareGPT first-turn lengths (no arrival times), and BurstGPT's CSV.
The short names read the traces shipped as package data; `PDSIM_TRACES_DIR` points them at another directory.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

TRACES_DIR_ENV = "PDSIM_TRACES_DIR"

# Short names for the traces shipped in loadgen/trace_data.
KNOWN_TRACES = {
    "azure-code": "AzureLLMInferenceTrace_code.csv",
    "azure-conv": "AzureLLMInferenceTrace_conv.csv",
    "mooncake": "mooncake_synthetic_trace.jsonl",
    "sharegpt": "sharegpt_first_turn_lengths.csv",
}


@dataclass(frozen=True, slots=True)
class TraceRequest:
    arrival: float | None  # seconds after the trace's first request; None when the trace has no times
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()  # Mooncake: one id per 512-token prompt block; equal ids share that prefix


def default_traces_dir() -> Path:
    """$PDSIM_TRACES_DIR, else the traces shipped with pdsim (package data, found wherever pdsim is installed)."""
    if os.environ.get(TRACES_DIR_ENV):
        return Path(os.environ[TRACES_DIR_ENV])
    return Path(str(resources.files("loadgen.trace_data")))


def resolve_trace(name_or_path: str) -> Path:
    if name_or_path in KNOWN_TRACES:
        path = default_traces_dir() / KNOWN_TRACES[name_or_path]
        if not path.is_file():
            raise ValueError(f"trace {name_or_path!r}: no {path.name} in {path.parent} (set by ${TRACES_DIR_ENV})")
        return path
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        known = ", ".join(KNOWN_TRACES)
        raise ValueError(f"trace {name_or_path!r} is neither a file nor one of: {known}")
    return path


def read_trace(name_or_path: str) -> list[TraceRequest]:
    """Read any supported trace, telling the format from the file's header."""
    path = resolve_trace(name_or_path)
    with path.open(newline="") as f:
        header = f.readline().strip()
    if header.startswith("{") and '"input_length"' in header:
        return read_mooncake(path)
    if header.startswith("TIMESTAMP,ContextTokens,GeneratedTokens"):
        return read_azure(path)
    if header.startswith("id,from0,from1"):
        return read_sharegpt_lengths(path)
    if header.startswith("Timestamp,Model,Request tokens"):
        return read_burstgpt(path)
    raise ValueError(f"{path}: unknown trace format (header {header[:60]!r})")


def parse_azure_timestamp(text: str) -> float:
    """Seconds since the epoch for '2023-11-16 18:17:03.9799600' (7 fractional digits, naive) or
    '2024-05-10 00:00:00.009930+00:00'. Naive times are read as UTC: only differences matter."""
    text = text.strip()
    zone = ""
    for sign in ("+", "-"):
        cut = text.rfind(sign)
        if cut > 10:  # a sign after the date part starts a UTC offset
            text, zone = text[:cut], text[cut:]
            break
    whole, _, fraction = text.partition(".")
    stamp = datetime.fromisoformat(whole + (zone or "+00:00")).timestamp()
    return stamp + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _relative(rows: list[tuple[float, int, int]]) -> list[TraceRequest]:
    if not rows:
        return []
    start = rows[0][0]
    return [TraceRequest(t - start, i, o) for t, i, o in rows]


def read_azure(path: Path) -> list[TraceRequest]:
    with path.open(newline="") as f:
        rows = [
            (parse_azure_timestamp(r["TIMESTAMP"]), int(r["ContextTokens"]), int(r["GeneratedTokens"]))
            for r in csv.DictReader(f)
        ]
    return _relative(rows)


def read_mooncake(path: Path) -> list[TraceRequest]:
    """Mooncake's JSONL (the synthetic, conversation and tool-agent traces share it): `timestamp` in ms,
    `input_length`, `output_length`, `hash_ids`."""

    def records() -> Iterator[tuple[float, int, int, tuple[int, ...]]]:
        with path.open() as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    hashes = tuple(int(h) for h in item.get("hash_ids", ()))
                    yield item["timestamp"] / 1000.0, int(item["input_length"]), int(item["output_length"]), hashes
                except (ValueError, KeyError, TypeError) as error:
                    raise ValueError(f"{path}:{number}: not a Mooncake trace record ({error!r})") from None

    rows = list(records())
    start = rows[0][0] if rows else 0.0
    return [TraceRequest(t - start, i, o, hashes) for t, i, o, hashes in rows]


def read_sharegpt_lengths(path: Path) -> list[TraceRequest]:
    with path.open(newline="") as f:
        return [TraceRequest(None, int(r["prompt_tokens"]), int(r["completion_tokens"])) for r in csv.DictReader(f)]


def read_burstgpt(path: Path) -> list[TraceRequest]:
    """BurstGPT: Timestamp is seconds from the first day's midnight; failed requests (0 response tokens) kept."""
    with path.open(newline="") as f:
        rows = [(float(r["Timestamp"]), int(r["Request tokens"]), int(r["Response tokens"])) for r in csv.DictReader(f)]
    return _relative(rows)
