"""Which model a node runs, where, and in what precision (torch-free, so the CLI parses it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.kv_layout import check_dtype_name


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which model, where and in what precision. `model` is a preset name or a local checkpoint path."""

    model: str = "tiny"
    device: str = "cpu"
    dtype: str = "float32"
    max_context: int | None = None  # lower the model's own context (saves KV memory)

    def __post_init__(self) -> None:
        check_dtype_name(self.dtype)
        if not (self.device == "cpu" or self.device == "mps" or self.device.startswith("cuda")):
            raise ValueError(f"device must be cpu, cuda[:N] or mps, got {self.device!r}")
        if self.max_context is not None and self.max_context < 2:
            raise ValueError(f"max_context must be >= 2, got {self.max_context}")
