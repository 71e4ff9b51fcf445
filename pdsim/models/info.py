"""What every process needs to know about the model a node serves: torch-free, so the router reads it from the
nodes and an emulated node (which loads no weights) describes its model the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import ModelLimits


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What every process needs to know about the model, torch-free so it can be sent to the router."""

    name: str
    path: Path
    fingerprint: str
    limits: ModelLimits
    eos_token_ids: frozenset[int]
    layout: KvLayout
    suppress_token_ids: frozenset[int] = frozenset()  # generation_config.suppress_tokens: never sampled
    # An emulated model's pushes carry this stand-in instead of its KV (`pdsim.engine.emulated.kv_store`).
    stand_in_layout: KvLayout | None = None

    @property
    def wire_layout(self) -> KvLayout:
        """The layout of the KV bytes a push carries and a decode node stages."""
        return self.stand_in_layout or self.layout
