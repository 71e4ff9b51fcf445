"""Torch dtypes by the names pdsim uses (see `pdsim.core.kv_layout.DTYPE_BYTES`)."""

from __future__ import annotations

import torch

from pdsim.core.kv_layout import check_dtype_name

_TORCH = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    return _TORCH[check_dtype_name(name)]


def dtype_name(dtype: torch.dtype) -> str:
    for name, value in _TORCH.items():
        if value == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}; use one of {', '.join(_TORCH)}")
