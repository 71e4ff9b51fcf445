"""Which model a node runs, where, and in what precision (torch-free, so the CLI parses it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.emulation.hardware import EMULATED_PREFIX, load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.kv_layout import check_dtype_name


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Which model, where and in what precision. `model` is a preset name or a local checkpoint path; on an
    emulated device (`emulated:h100-sxm`) also a shipped config name (`llama-3.1-8b`) or a config.json path."""

    model: str = "tiny"
    device: str = "cpu"
    dtype: str = "float32"
    max_context: int | None = None  # lower the model's own context (saves KV memory)

    def __post_init__(self) -> None:
        check_dtype_name(self.dtype)
        if self.emulated_profile is not None:
            load_profile(self.emulated_profile)  # an unknown profile is refused here, with the known ones listed
            load_model_config(self.model)  # and a model without a config
        elif not (self.device == "cpu" or self.device == "mps" or self.device.startswith("cuda")):
            raise ValueError(f"device must be cpu, cuda[:N], mps or emulated:<profile>, got {self.device!r}")
        if self.max_context is not None and self.max_context < 2:
            raise ValueError(f"max_context must be >= 2, got {self.max_context}")

    @property
    def emulated_profile(self) -> str | None:
        """The hardware profile (id or path) of an `emulated:<profile>` device; None for a real device."""
        return self.device.removeprefix(EMULATED_PREFIX) if self.device.startswith(EMULATED_PREFIX) else None
