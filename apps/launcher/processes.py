"""Child processes for the launcher: start a server process from its config (again, to restart it), read its
ready line, stop every child in order.

Each child gets its whole frozen config as one JSON file (`apps.config_io`) in a directory this launcher owns and
removes on stop, and starts as `python -m apps <role> --config FILE`: the command a person would type. Children run
in their own session (so a terminal's Ctrl-C reaches only the launcher, which stops them in order) and get SIGTERM
if the launcher dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from apps.config_io import write_config
from apps.launcher.targets import write_targets
from pdsim.core.topology import Mode
from pdsim.rpc.server import parse_ready_line

log = logging.getLogger(__name__)

_STOP_SECONDS = 5.0

# Loaded here, not in the child: between fork and exec only async-signal-safe work is safe (no dlopen).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the launcher died before prctl took effect
                os._exit(1)

    return preexec


def interrupt(signum: int, frame: object) -> None:
    """A signal handler that unwinds like Ctrl-C, so `finally` blocks stop what was started."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@dataclass
class Child:
    name: str
    command: str  # the pdsim command it runs: a role, or "router"
    config: object  # the config it was started with
    process: subprocess.Popen[str]
    address: str = ""  # from the ready line; "" until then (and while it restarts)
    endpoints: dict[str, str] = field(default_factory=dict)  # e.g. metrics: host:port, from the ready line
    cores: tuple[int, ...] | None = None
    started: float = field(default_factory=time.monotonic)


class Launcher:
    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.children: list[Child] = []
        self.targets_file: Path | None = None
        self._lines: queue.Queue[tuple[str, subprocess.Popen[str], str]] = queue.Queue()
        self._config_dir: Path | None = None

    def spawn(self, name: str, command: str, config: object, cores: tuple[int, ...] | None = None) -> Child:
        """Start `pdsim <command> --config <config as JSON>` as the child `name`."""
        child = Child(name, command, config, self._start(name, command, config), cores=cores)
        self.children.append(child)
        return child

    def respawn(self, child: Child, config: object) -> None:
        """Start `child` again, from `config`; its ready line arrives through `collect_ready`."""
        child.config, child.address, child.endpoints = config, "", {}
        child.process = self._start(child.name, child.command, config)
        child.started = time.monotonic()

    def _start(self, name: str, command: str, config: object) -> subprocess.Popen[str]:
        if self._config_dir is None:
            self._config_dir = Path(tempfile.mkdtemp(prefix="pdsim-cluster-"))
        path = write_config(config, self._config_dir / f"{name}.json")
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        process = subprocess.Popen(
            [sys.executable, "-m", "apps", "--log-level", level, command, "--config", str(path)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        assert process.stdout is not None
        threading.Thread(target=self._pump, args=(name, process, process.stdout), daemon=True).start()
        return process

    def _pump(self, name: str, process: subprocess.Popen[str], stream: IO[str]) -> None:
        for line in stream:
            self._lines.put((name, process, line.strip()))

    def collect_ready(self) -> list[Child]:
        """Read the ready lines printed so far (without waiting); returns the children they named."""
        by_name = {c.name: c for c in self.children}
        ready: list[Child] = []
        while True:
            try:
                name, process, line = self._lines.get_nowait()
            except queue.Empty:
                return ready
            if self._take(by_name.get(name), process, line):
                ready.append(by_name[name])

    @staticmethod
    def _take(child: Child | None, process: subprocess.Popen[str], line: str) -> bool:
        """Record a ready line of the child's current process (a restarted child's old one may still print)."""
        found = parse_ready_line(line)
        if child is None or found is None or process is not child.process:
            return False
        child.address, child.endpoints = found
        return True

    def wait_ready(self, pending: list[Child], timeout: float) -> None:
        """Collect each child's ready line (its address), failing fast if one exits."""
        by_name = {c.name: c for c in pending}
        deadline = time.monotonic() + timeout
        while any(not c.address for c in pending):
            for child in pending:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with code {child.process.returncode} during start-up")
            if time.monotonic() > deadline:
                late = ", ".join(c.name for c in pending if not c.address)
                raise TimeoutError(f"{late} did not start within {timeout:.0f} s")
            try:
                name, process, line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self._take(by_name.get(name), process, line)

    def write_targets(self, directory: Path) -> Path:
        """A Prometheus file-based service discovery file listing every process's /metrics endpoint (see
        `apps.launcher.targets`: files of launchers that are gone are removed first)."""
        mode = self.mode.value
        groups: list[dict[str, object]] = [
            {"targets": [c.endpoints["metrics"]], "labels": {"mode": mode, "pdsim_process": c.name}}
            for c in self.children
            if c.endpoints.get("metrics")
        ]
        self.targets_file = write_targets(directory, mode, groups)
        return self.targets_file

    @property
    def router_address(self) -> str:
        router = self.children[-1]
        assert router.name == "router" and router.address, "the cluster has not started"
        return router.address

    def stop_all(self) -> None:
        """SIGTERM the router, then the nodes (so no new request reaches a node going away); SIGKILL whatever
        is still running after `_STOP_SECONDS`. Signals are ignored meanwhile: this cleanup is bounded."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        if self.targets_file is not None:  # Prometheus stops scraping processes that are going away
            self.targets_file.unlink(missing_ok=True)
        try:
            deadline = time.monotonic() + _STOP_SECONDS
            routers = [c for c in self.children if c.name == "router"]
            nodes = [c for c in self.children if c.name != "router"]
            for group in (routers, nodes):
                for child in group:
                    if child.process.poll() is None:
                        child.process.send_signal(signal.SIGTERM)
                for child in group:
                    try:
                        child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        log.warning("%s did not stop in %.0f s; killing it", child.name, _STOP_SECONDS)
                        child.process.kill()
                        child.process.wait()
        finally:
            if self._config_dir is not None:
                shutil.rmtree(self._config_dir, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
