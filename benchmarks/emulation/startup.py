"""`python -m benchmarks.emulation startup`: what one decode node costs to start, real against emulated: seconds
to its ready line and resident memory once up (median of a few starts each)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

EMULATED = ["--model", "llama-3.1-8b", "--device", "emulated:h100-sxm", "--dtype", "bfloat16", "--max-context", "8192"]
NODES = {
    "real small (bfloat16) on the CPU": ["--model", "small", "--dtype", "bfloat16"],
    "emulated llama-3.1-8b on emulated:h100-sxm": EMULATED,
}


def start_once(args: Sequence[str]) -> tuple[float, float]:
    """(seconds to the ready line, resident MiB half a second later) of one decode node."""
    started = time.perf_counter()
    node = subprocess.Popen(
        [sys.executable, "-m", "apps", "--log-level", "WARNING", "decode", "--port", "0", "--metrics-port", "0", *args],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert node.stdout is not None
        if not node.stdout.readline():
            raise RuntimeError(f"the node exited before it was ready: {' '.join(args)}")
        ready = time.perf_counter() - started
        time.sleep(0.5)
        status = Path(f"/proc/{node.pid}/status").read_text().splitlines()
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        return ready, rss_kib / 1024
    finally:
        node.terminate()
        node.wait(30)


def run_startup(repeats: int = 3) -> str:
    lines = [f"{'decode node':<44} {'ready s':>8} {'RSS MiB':>8}   (median of {repeats})"]
    for name, args in NODES.items():
        runs = [start_once(args) for _ in range(repeats)]
        ready = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        lines.append(f"{name:<44} {ready:>8.2f} {rss:>8.0f}")
    return "\n".join(lines)
