"""Length distributions for request mixes: fixed, uniform, normal, lognormal, or empirical from a trace."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from loadgen.traces import read_trace


class LengthDistribution(Protocol):
    def sample(self, rng: random.Random) -> int: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    value: int

    def sample(self, rng: random.Random) -> int:
        return self.value

    def describe(self) -> str:
        return f"{self.value}"


@dataclass(frozen=True, slots=True)
class Uniform:
    low: int
    high: int

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def describe(self) -> str:
        return f"uniform[{self.low}, {self.high}]"


@dataclass(frozen=True, slots=True)
class Normal:
    mean: float
    std: float
    low: int = 1
    high: int | None = None

    def sample(self, rng: random.Random) -> int:
        return _clamp(round(rng.gauss(self.mean, self.std)), self.low, self.high)

    def describe(self) -> str:
        return f"normal(mean {self.mean:g}, std {self.std:g})"


@dataclass(frozen=True, slots=True)
class LogNormal:
    median: float
    sigma: float
    low: int = 1
    high: int | None = None

    def sample(self, rng: random.Random) -> int:
        return _clamp(round(rng.lognormvariate(math.log(self.median), self.sigma)), self.low, self.high)

    def describe(self) -> str:
        return f"lognormal(median {self.median:g}, sigma {self.sigma:g})"


@dataclass(frozen=True, slots=True)
class Empirical:
    """Draws from lengths observed in a trace (with replacement)."""

    values: tuple[int, ...]
    source: str
    scale: float = 1.0  # multiply what is drawn (e.g. to shrink production lengths to a small model)
    low: int = 1
    high: int | None = None

    def sample(self, rng: random.Random) -> int:
        return _clamp(round(rng.choice(self.values) * self.scale), self.low, self.high)

    def describe(self) -> str:
        return f"empirical({self.source}{f', x{self.scale:g}' if self.scale != 1 else ''})"


def _clamp(value: int, low: int, high: int | None) -> int:
    value = max(value, low)
    return value if high is None else min(value, high)


def parse_distribution(spec: int | Mapping[str, Any], where: str) -> LengthDistribution:
    """From a mix file: an integer (fixed) or a table with `dist` and its parameters."""
    if isinstance(spec, int):
        return Fixed(_positive(spec, where))
    if not isinstance(spec, Mapping) or "dist" not in spec:
        raise ValueError(f"{where}: expected an integer or a table with 'dist', got {spec!r}")
    kind, bounds = spec["dist"], {k: spec[k] for k in ("low", "high") if k in spec}
    try:
        if kind == "fixed":
            return Fixed(_positive(spec["value"], where))
        if kind == "uniform":
            low, high = int(spec["low"]), int(spec["high"])
            if not 1 <= low <= high:
                raise ValueError(f"{where}: uniform needs 1 <= low <= high, got {low}, {high}")
            return Uniform(low, high)
        if kind == "normal":
            return Normal(float(spec["mean"]), float(spec["std"]), **bounds)
        if kind == "lognormal":
            return LogNormal(float(spec["median"]), float(spec["sigma"]), **bounds)
        if kind == "empirical":
            field = spec.get("field", "input")
            if field not in ("input", "output"):
                raise ValueError(f"{where}: empirical 'field' must be input or output, got {field!r}")
            records = read_trace(str(spec["trace"]))
            values = tuple(r.input_tokens if field == "input" else r.output_tokens for r in records)
            values = tuple(v for v in values if v > 0)
            return Empirical(values, f"{spec['trace']}:{field}", float(spec.get("scale", 1.0)), **bounds)
    except KeyError as missing:
        raise ValueError(f"{where}: {kind} needs {missing}") from None
    raise ValueError(f"{where}: unknown dist {kind!r} (fixed, uniform, normal, lognormal, empirical)")


def _positive(value: object, where: str) -> int:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: a length must be a positive integer, got {value!r}")
    return value
