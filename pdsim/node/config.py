"""Configuration of one node process (prefill, decode or colocated worker)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pdsim.core.requests import DEFAULT_MAX_TOKENS
from pdsim.engine.config import EngineConfig
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
