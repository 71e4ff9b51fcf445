"""`pdsim up` outlives its nodes: a node killed with -9 is restarted on the same address while the rest keeps
serving; with `--restart never` the cluster ends once a whole role is gone. A launcher killed with -9 leaves a
Prometheus targets file behind, which the next launcher (and `pdsim observe`) removes."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.launcher.targets import remove_stale, write_targets
from pdsim.rpc.server import wait_healthy

ROOT = Path(__file__).resolve().parent.parent


class _Up:
    """A `pdsim up` child with its stdout banner parsed and its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apps", "--log-level", "WARNING", "up", "--port", "0", "--http-port", "0", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.errors: queue.Queue[str] = queue.Queue()
        assert self.process.stderr is not None
        threading.Thread(target=self._pump, args=(self.process.stderr,), daemon=True).start()
        banner = self._banner()
        self.router = banner.split()[1]
        self.nodes = {m[1]: (m[2], int(m[3])) for m in re.finditer(r"^\s+(\S+)\s+(\S+)\s+pid (\d+)", banner, re.M)}
        found = re.search(r"^Prometheus targets: (\S+)", banner, re.M)
        self.targets = Path(found[1]) if found else None

    def _pump(self, stream: Iterator[str]) -> None:
        for line in stream:
            self.errors.put(line.strip())

    def _banner(self) -> str:
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(s.startswith("Ctrl-C") for s in lines):
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
        assert lines and lines[0].startswith("router: "), "\n".join(lines)
        return "\n".join(lines)

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.errors.get(timeout=0.2)
            except queue.Empty:
                continue
            if re.search(pattern, line):
                return line
        raise AssertionError(f"pdsim up printed no line matching {pattern!r} within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _generate(router: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "apps", "generate", "--router", router, "--max-tokens", "5", "--ignore-eos", "hi"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode == 0


@pytest.mark.slow
def test_a_killed_node_is_restarted_on_its_address_and_the_cluster_keeps_serving(tmp_path: Path) -> None:
    up = _Up("--mode", "disaggregated", "--prefill", "1", "--decode", "2", "--restart-backoff", "0.2",
             "--targets-dir", str(tmp_path))  # fmt: skip
    try:
        address, pid = up.nodes["decode-2"]
        others = [p for name, (_, p) in up.nodes.items() if name != "decode-2"]
        assert up.targets is not None
        targets = json.loads(up.targets.read_text())
        os.kill(pid, signal.SIGKILL)
        up.wait_for(r"decode-2 exited with code -9; restarting it", timeout=10)
        assert _generate(up.router), "the other decode node did not take the requests meanwhile"
        back = up.wait_for(r"decode-2 is back on", timeout=90)
        assert f"back on {address} " in back, back  # the router's address list is still right
        asyncio.run(wait_healthy(address, timeout=10))
        assert up.process.poll() is None and all(_alive(p) for p in others)  # nothing else was stopped
        assert json.loads(up.targets.read_text()) == targets  # its /metrics is where Prometheus looks too
        deadline = time.monotonic() + 30
        while not all(_generate(up.router) for _ in range(3)):  # the router reconnects within its backoff
            assert time.monotonic() < deadline, "requests kept failing after the restart"
        new_pid = int(back.split("pid ")[1].rstrip(")"))
        up.stop()
        assert up.process.returncode == 0
        assert not _alive(new_pid) and not any(_alive(p) for p in others)
        assert not up.targets.exists()
    finally:
        up.stop()


def test_with_restart_never_the_cluster_ends_when_a_whole_role_is_gone() -> None:
    up = _Up("--mode", "disaggregated", "--prefill", "1", "--decode", "1", "--restart", "never", "--no-metrics")
    try:
        os.kill(up.nodes["decode-1"][1], signal.SIGKILL)
        up.wait_for(r"every decode process is down \(decode-1\); stopping the cluster", timeout=20)
        assert up.process.wait(timeout=20) == 1
        assert not any(_alive(pid) for _, pid in up.nodes.values())
    finally:
        up.stop()


def test_a_dead_launchers_targets_file_is_removed_by_the_next_one(tmp_path: Path) -> None:
    write = "from apps.launcher.targets import write_targets; import sys, time; "
    write += f"print(write_targets(__import__('pathlib').Path({str(tmp_path)!r}), 'colocated', []), flush=True); "
    write += "time.sleep(60)"
    killed = subprocess.Popen([sys.executable, "-c", write], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert killed.stdout is not None
        stale = Path(killed.stdout.readline().strip())
        assert stale.exists()
        mine = write_targets(tmp_path, "disaggregated", [])  # its owner is alive: kept
        assert remove_stale(tmp_path) == [] and stale.exists()
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert remove_stale(tmp_path) == [stale] and mine.exists()  # its owner is gone; ours stays
        # A pid that is alive but started at another time is not the owner (pid reuse).
        reused = tmp_path / f"pdsim-colocated-{os.getpid()}-1-0123abcd.json"
        reused.write_text("[]")
        unrelated = tmp_path / "someone-elses.json"
        unrelated.write_text("[]")
        again = write_targets(tmp_path, "colocated", [])  # a new launcher sweeps before it writes
        assert not reused.exists() and unrelated.exists() and again.exists() and mine.exists()
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
