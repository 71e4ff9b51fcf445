"""Child-process supervision for the launcher: start a server process from its config, read its ready line, stop
every child in order.

Each child gets its whole frozen config as one JSON file (`apps.config_io`) in a directory this launcher owns and
removes on stop, and starts as `python -m apps <role> --config FILE`: the command a person would type. Children run
in their own session (so a terminal's Ctrl-C reaches only the launcher, which stops them in order) and get SIGTERM
if the launcher dies.
"""

from __future__ import annotations

import ctypes
import json
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from apps.config_io import write_config
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
    process: subprocess.Popen[str]
    address: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)  # e.g. metrics: host:port, from the ready line
    cores: tuple[int, ...] | None = None


class Launcher:
    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.children: list[Child] = []
        self.targets_file: Path | None = None
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._config_dir: Path | None = None

    def spawn(self, name: str, command: str, config: object, cores: tuple[int, ...] | None = None) -> Child:
        """Start `pdsim <command> --config <config as JSON>` as the child `name`."""
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
        child = Child(name, process, cores=cores)
        self.children.append(child)
        assert process.stdout is not None
        threading.Thread(target=self._pump, args=(name, process.stdout), daemon=True).start()
        return child

    def _pump(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put((name, line.strip()))

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
                name, line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            ready = parse_ready_line(line)
            if ready is not None and name in by_name:
                by_name[name].address, by_name[name].endpoints = ready

    def write_targets(self, directory: Path) -> Path:
        """A Prometheus file-based service discovery file listing every process's /metrics endpoint."""
        mode = self.mode.value
        groups = [
            {"targets": [c.endpoints["metrics"]], "labels": {"mode": mode, "pdsim_process": c.name}}
            for c in self.children
            if c.endpoints.get("metrics")
        ]
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"pdsim-{mode}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        partial = path.with_suffix(".json.tmp")  # Prometheus may read at any time: replace it whole
        partial.write_text(json.dumps(groups, indent=2))
        partial.replace(path)
        self.targets_file = path
        return path

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
