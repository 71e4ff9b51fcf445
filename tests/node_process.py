"""A node in its own process on a fixed port, for fault tests: kill it (-9), stop it (SIGSTOP), let it go on
(SIGCONT), and start it again on the same port, as an operator or a crash would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pdsim.rpc.server import parse_ready_line

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0  # seconds: importing torch on a loaded 2-core machine is slow


def free_port() -> int:
    """A port nothing listens on now (the node binds it itself, with SO_REUSEPORT off)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class NodeProcess:
    """`pdsim <role> --port <port>` with the tiny preset; `start()` returns once it printed its ready line."""

    def __init__(self, role: str, port: int | None = None, *flags: str) -> None:
        self.role = role
        self.port = port or free_port()
        self.flags = flags
        self.process: subprocess.Popen[str] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "apps", "--log-level", "WARNING", self.role, "--model", "tiny"]
        command += ["--port", str(self.port), "--no-metrics", *self.flags]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.role} node on port {self.port} exited with {self.process.wait()}")
            parsed = parse_ready_line(line)
            if parsed is not None:
                assert parsed[0] == self.address, parsed
                return
        raise TimeoutError(f"{self.role} node on port {self.port} did not start within {START_TIMEOUT} s")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """kill -9, and reap it: its port is free once this returns."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        """Stop it whatever state it is in (a stopped process is let go on first, so it can exit)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
