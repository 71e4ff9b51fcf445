"""Configuration of one node process (prefill, decode or colocated worker)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pdsim.core.requests import DEFAULT_MAX_TOKENS
from pdsim.engine.config import EngineConfig
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.kv.codec import DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES
from pdsim.metrics import MetricsConfig
from pdsim.models.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class NodeConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port; the node prints the address it bound
    cpus: tuple[int, ...] | None = None  # CPU cores this process may use (CPU devices only)
    model: ModelSpec = field(default_factory=ModelSpec)
    engine: EngineConfig = field(default_factory=EngineConfig)
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    kv_chunk_bytes: int = DEFAULT_CHUNK_BYTES
    kv_push_timeout: float = 30.0  # prefill: seconds one KV push may take before the next decode node is tried
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # On SIGTERM: seconds in-flight streams get to finish (new ones are refused) before they are failed
    drain_seconds: float = 2.0
    emulation: EmulationConfig = field(default_factory=EmulationConfig)  # read only on an emulated device
    # A directory each node appends its steps to (shape and seconds, `pdsim.node.step_log`), for calibration
    record_steps: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.cpus is not None and (not self.cpus or min(self.cpus) < 0):
            raise ValueError(f"cpus must be a non-empty list of core ids, got {self.cpus}")
        if self.default_max_tokens <= 0:
            raise ValueError(f"default_max_tokens must be > 0, got {self.default_max_tokens}")
        if self.drain_seconds < 0:
            raise ValueError(f"drain_seconds must be >= 0, got {self.drain_seconds}")
        if not 0 < self.kv_chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"kv_chunk_bytes must be in (0, {MAX_CHUNK_BYTES}], got {self.kv_chunk_bytes}")
        if self.kv_push_timeout <= 0:
            raise ValueError(f"kv_push_timeout must be > 0, got {self.kv_push_timeout}")

    @property
    def dilation(self) -> float:
        """Wall seconds per emulated second: the emulation's dilation on an emulated device, else 1."""
        return self.emulation.dilation if self.model.emulated_profile is not None else 1.0

    def wall_clock(self) -> NodeConfig:
        """This config with its emulated durations (KV lease, push stall and timeout) stretched by the dilation
        into the wall-clock seconds the node enforces."""
        k = self.dilation
        if k == 1.0:
            return self
        engine = replace(self.engine, kv_lease_seconds=self.engine.kv_lease_seconds * k,
                         kv_push_stall_seconds=self.engine.kv_push_stall_seconds * k)  # fmt: skip
        return replace(self, engine=engine, kv_push_timeout=self.kv_push_timeout * k)
