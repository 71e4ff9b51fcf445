"""Which shipped profile models the GPU at hand, from the name the driver reports."""

from __future__ import annotations

# (substrings all in the name, profile): the first match wins, so the more specific come first.
_BY_NAME: tuple[tuple[tuple[str, ...], str], ...] = (
    (("H100", "PCIE"), "h100-pcie"),
    (("H100",), "h100-sxm"),  # "NVIDIA H100 80GB HBM3" is the SXM part
    (("H200",), "h200"),
    (("A100",), "a100-80gb"),
    (("L40S",), "l40s"),
    (("B200",), "b200"),
    (("MI300X",), "mi300x"),
)


def profile_for_gpu(name: str) -> str | None:
    upper = name.upper()
    return next((profile for parts, profile in _BY_NAME if all(p in upper for p in parts)), None)
