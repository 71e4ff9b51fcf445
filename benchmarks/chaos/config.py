"""The chaos run's settings; the command line reads its defaults from here."""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.topology import Mode


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    minutes: float = 5.0  # how long load runs while faults are injected
    rate: float = 3.0  # requests per second, Poisson arrivals
    mode: Mode = Mode.DISAGGREGATED
    prefill: int = 2
    decode: int = 2
    workers: int = 2  # colocated
    model: str = "tiny"
    fault_every: float = 20.0  # mean seconds between faults (each 0.75-1.25x of it)
    stop_seconds: float = 5.0  # how long a SIGSTOPped node stays stopped
    cancel_fraction: float = 0.1  # requests whose client disconnects at a random moment
    max_tokens: int = 32
    request_timeout: float = 60.0  # a request with no terminal event by then is lost
    seed: int = 0
    settle_seconds: float = 20.0  # after the load: how long KV may take to return to zero

    def __post_init__(self) -> None:
        for name in ("minutes", "rate", "fault_every", "request_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.cancel_fraction <= 1.0:
            raise ValueError(f"cancel_fraction must be in [0, 1], got {self.cancel_fraction}")
