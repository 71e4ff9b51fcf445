"""A `pdsim up` cluster seen from outside, as an operator sees it: its banner (router, nodes, pids, /metrics),
its log lines with the time each arrived (node restarts, the router's rotation changes), signals to its nodes,
each node's KV held, and the processes left once it stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pdsim.core.topology import Mode

_ROOT = Path(__file__).resolve().parents[2]
_BANNER_SECONDS = 180.0
_NODE_LINE = re.compile(r"^\s+(\S+)\s+(\S+)\s+pid (\d+).*?metrics (\S+)", re.M)
_BACK = re.compile(r"pdsim up: (\S+) is back on (\S+) \(pid (\d+)\)")


@dataclass
class Node:
    name: str  # prefill-0, decode-1, colocated-0 ...
    address: str
    pid: int
    metrics_url: str
    pids: list[int] = field(default_factory=list)  # every process that has served as this node

    @property
    def role(self) -> str:
        return self.name.rsplit("-", 1)[0]


@dataclass(frozen=True, slots=True)
class LogLine:
    at: float  # time.monotonic() when it was read
    text: str


class Cluster:
    """Starts `pdsim up` with its nodes restarted on their ports when they die (the launcher's default)."""

    def __init__(self, mode: Mode, counts: dict[str, int], model: str, extra: Sequence[str] = ()) -> None:
        shape = ["--workers", str(counts["workers"])] if mode is Mode.COLOCATED else [
            "--prefill", str(counts["prefill"]), "--decode", str(counts["decode"])]  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apps", "--log-level", "WARNING", "up", "--mode", mode.value, *shape,
             "--model", model, "--port", "0", "--no-http", "--restart-backoff", "0.2", *extra],
            cwd=_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.log: list[LogLine] = []
        self.nodes: dict[str, Node] = {}  # filled from the banner; restarts update pids
        self.router_metrics_url = ""
        self._lock = threading.Lock()
        assert self.process.stderr is not None
        threading.Thread(target=self._pump, args=(self.process.stderr,), daemon=True).start()
        try:
            banner = self._banner()
        except BaseException:
            self.stop()
            raise
        self.router = banner.split()[1]
        self.nodes = {m[1]: Node(m[1], m[2], int(m[3]), m[4], [int(m[3])]) for m in _NODE_LINE.finditer(banner)}
        router = self.nodes.pop("router", None)
        self.router_metrics_url = router.metrics_url if router is not None else ""

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            entry = LogLine(time.monotonic(), line.rstrip())
            with self._lock:
                self.log.append(entry)
            found = _BACK.search(entry.text)
            if found and found[1] in self.nodes:
                node = self.nodes[found[1]]
                node.pid = int(found[3])
                node.pids.append(node.pid)

    def _banner(self) -> str:
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + _BANNER_SECONDS
        while time.monotonic() < deadline and not any(s.startswith("Ctrl-C") for s in lines):
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
        if not lines or not lines[0].startswith("router: "):
            raise RuntimeError("pdsim up did not start:\n" + "\n".join(lines + [e.text for e in self.log[-20:]]))
        return "\n".join(lines)

    def lines_since(self, since: float) -> list[LogLine]:
        with self._lock:
            return [entry for entry in self.log if entry.at >= since]

    def first_line(self, pattern: str, since: float) -> LogLine | None:
        found = re.compile(pattern)
        return next((entry for entry in self.lines_since(since) if found.search(entry.text)), None)

    def wait_line(self, pattern: str, since: float, timeout: float) -> LogLine | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (entry := self.first_line(pattern, since)) is not None:
                return entry
            time.sleep(0.05)
        return None

    def signal(self, name: str, sig: signal.Signals) -> None:
        os.kill(self.nodes[name].pid, sig)

    def kv_held(self) -> dict[str, float]:
        """Each node's `pdsim_kv_held_bytes` (running and staged KV); NaN for a node that did not answer."""
        held: dict[str, float] = {}
        for name, node in self.nodes.items():
            try:
                with urllib.request.urlopen(node.metrics_url, timeout=2) as response:
                    text = response.read().decode()
                values = re.findall(r"^pdsim_kv_held_bytes\{[^}]*\} (\S+)$", text, re.M)
                held[name] = sum(float(v) for v in values)
            except OSError:
                held[name] = float("nan")
        return held

    def serving(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the launcher (it stops every node), waiting up to `timeout`; kills the group past that."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def leaked(self) -> list[int]:
        """Processes that ever served as a node and are still alive (not zombies)."""
        return [pid for node in self.nodes.values() for pid in node.pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
