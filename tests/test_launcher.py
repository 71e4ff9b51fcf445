"""`pdsim up` starts a healthy cluster, serves `pdsim generate`, and leaves nothing behind on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("mode_args", "stop_signal"),
    [
        (["--mode", "colocated", "--workers", "2"], signal.SIGINT),
        (["--mode", "disaggregated", "--prefill", "1", "--decode", "1"], signal.SIGTERM),
    ],
)
def test_up_generate_and_stop_on_a_signal(mode_args: list[str], stop_signal: signal.Signals) -> None:
    up = subprocess.Popen(
        [sys.executable, "-m", "apps", "--log-level", "WARNING", "up", *mode_args, "--port", "0", "--http-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(s.startswith("Ctrl-C") for s in lines):
            line = up.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        banner = "\n".join(lines)
        assert lines and lines[0].startswith("router: "), banner + (up.stderr.read() if up.stderr and up.poll() else "")
        router = lines[0].split()[1]
        pids = [int(p) for p in re.findall(r"pid (\d+)", banner)]
        assert len(pids) == 3
        generated = subprocess.run(
            [sys.executable, "-m", "apps", "generate", "--router", router, "--max-tokens", "7", "--ignore-eos", "hi"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stderr
        assert "[7 tokens, prompt 2, length" in generated.stderr
        assert lines[1].startswith("openai: http://"), banner
        body = json.dumps({"model": "tiny", "prompt": "hi", "max_tokens": 7, "ignore_eos": True}).encode()
        request = urllib.request.Request(
            lines[1].split()[1] + "/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert json.load(reply)["usage"] == {"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9}

        started = time.monotonic()
        up.send_signal(stop_signal)
        assert up.wait(timeout=10) == 0
        assert time.monotonic() - started < 6
        assert [pid for pid in pids if _alive(pid)] == []
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGKILL)
            up.wait()
