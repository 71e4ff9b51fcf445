"""The two roofs a roofline is drawn with (`Peaks`), and the spec sheets' for known GPUs. Torch-free: the
emulated phase benchmark draws a profile's roofs without loading torch; `peaks` measures a real device's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Peaks:
    flops_per_s: float
    bytes_per_s: float
    source: str  # "measured" or the spec sheet's name

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (FLOP/byte) where the two roofs meet."""
        return self.flops_per_s / self.bytes_per_s

    def best(self, other: Peaks) -> Peaks:
        """The higher of each roof: a peak is what the device can reach, and a shared machine only lowers it."""
        return Peaks(max(self.flops_per_s, other.flops_per_s), max(self.bytes_per_s, other.bytes_per_s), self.source)

    def attainable(self, intensity: float) -> float:
        """The roofline: the FLOP/s a kernel of this arithmetic intensity can reach at most."""
        return min(self.flops_per_s, self.bytes_per_s * intensity)


# Dense bf16/fp16 tensor-core peaks and HBM bandwidth, from the vendors' data sheets. Longer names first:
# "H100 PCIe" must not match the SXM entry.
SPEC_SHEETS: tuple[tuple[str, Peaks], ...] = (
    ("H100 PCIe", Peaks(756e12, 2.0e12, "H100 PCIe spec sheet")),
    ("H100", Peaks(989e12, 3.35e12, "H100 SXM spec sheet")),
    ("H200", Peaks(989e12, 4.8e12, "H200 SXM spec sheet")),
    ("A100", Peaks(312e12, 2.0e12, "A100 spec sheet")),
)


def spec_peaks(device_name: str, dtype: str) -> Peaks | None:
    """The spec-sheet peaks of a known GPU, for 16-bit dtypes (the sheets' FLOP/s are for bf16/fp16)."""
    if dtype not in ("bfloat16", "float16"):
        return None
    for key, peaks in SPEC_SHEETS:
        if key.lower() in device_name.lower():
            return peaks
    return None
