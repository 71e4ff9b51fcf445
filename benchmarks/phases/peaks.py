"""The two roofs: peak FLOP/s and peak bytes/s, measured on the device in this run, and spec-sheet peaks for
known GPUs.

Measured peaks are what this device reaches on the simplest kernels that can reach its limits: a large square
matmul in the run's dtype (compute) and a large tensor copy (memory; a copy reads and writes every byte, so it
moves twice its size). Each is the best of several repeats, timed with the device synchronized. Spec-sheet peaks
are dense 16-bit tensor-core FLOP/s and HBM bandwidth, matched by the device's name.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from benchmarks.phases.roofs import Peaks
from pdsim.models.dtypes import torch_dtype

T = TypeVar("T")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple {platform.machine()} (MPS)"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a timer around them measures them (CPU ops are synchronous already)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """`fn()` and the seconds it took on `device`: synchronized before (earlier work is not counted) and after
    (its own queued kernels are)."""
    synchronize(device)
    started = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - started


def best_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """The fastest of `repeats` timed calls, after one untimed warm-up call."""
    fn()
    return min((timed(fn, device)[1] for _ in range(repeats)), default=float("inf"))


def measure_peaks(device: torch.device, dtype: str, matmul_size: int, copy_bytes: int, repeats: int = 5) -> Peaks:
    """Peak FLOP/s of an n x n matmul in `dtype`, peak bytes/s of copying `copy_bytes` (read + write)."""
    if matmul_size <= 0 or copy_bytes <= 0:
        raise ValueError(f"matmul_size and copy_bytes must be > 0, got {matmul_size} and {copy_bytes}")
    with torch.inference_mode():
        matmul = _matmul_seconds(device, torch_dtype(dtype), matmul_size, repeats)
        copy = _copy_seconds(device, copy_bytes, repeats)
    return Peaks(2 * matmul_size**3 / matmul, 2 * copy_bytes / copy, "measured")


def _matmul_seconds(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty_like(a)
    return best_time(lambda: torch.mm(a, b, out=out), device, repeats)


def _copy_seconds(device: torch.device, nbytes: int, repeats: int) -> float:
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return best_time(lambda: dst.copy_(src), device, repeats)
