"""Service-level objectives: the per-request latency targets a request class must meet (see METRICS.md).

Shared by the load generator (which judges requests from the client's clock) and the router (which counts
them live in its metrics). Torch-free and gRPC-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_CLASS = "default"  # the class of a request that names none, or names one the router has no SLO for


@dataclass(frozen=True, slots=True)
class Slo:
    ttft: float  # seconds
    tpot: float  # seconds
    e2el: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft", "tpot", "e2el"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"SLO {name} must be > 0 seconds, got {value}")

    def met(self, ttft: float, tpot: float | None, e2el: float) -> bool:
        """TPOT is not checked when it is undefined (a one-token output)."""
        return ttft <= self.ttft and (tpot is None or tpot <= self.tpot) and (self.e2el is None or e2el <= self.e2el)


@dataclass(frozen=True, slots=True)
class SloTable:
    """One SLO per named request class, and one for every other request."""

    default: Slo = field(default_factory=lambda: Slo(ttft=2.0, tpot=0.1))
    classes: Mapping[str, Slo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if DEFAULT_CLASS in self.classes:
            raise ValueError(f"{DEFAULT_CLASS!r} is reserved for requests of no configured class")

    def class_of(self, name: str) -> str:
        """The class a request is counted under: its own when the table names it. Bounded, so it can be a label."""
        return name if name in self.classes else DEFAULT_CLASS

    def slo(self, class_name: str) -> Slo:
        return self.classes.get(class_name, self.default)

    def names(self) -> list[str]:
        return [*sorted(self.classes), DEFAULT_CLASS]


def parse_slo(text: str) -> tuple[str | None, Slo]:
    """`[CLASS:]ttft=S,tpot=S[,e2el=S]` → (class or None for the default, Slo)."""
    name, _, body = text.rpartition(":")
    fields: dict[str, float] = {}
    for part in body.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("ttft", "tpot", "e2el"):
            raise ValueError(f"bad SLO {text!r}: expected [CLASS:]ttft=SECONDS,tpot=SECONDS[,e2el=SECONDS]")
        try:
            fields[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad SLO {text!r}: {key.strip()}={value!r} is not a number of seconds") from None
    if "ttft" not in fields or "tpot" not in fields:
        raise ValueError(f"bad SLO {text!r}: ttft and tpot are both required")
    return (name or None), Slo(fields["ttft"], fields["tpot"], fields.get("e2el"))


def parse_slo_args(texts: Iterable[str]) -> SloTable:
    default: Slo | None = None
    classes: dict[str, Slo] = {}
    for text in texts:
        name, slo = parse_slo(text)
        if name is None:
            default = slo
        else:
            classes[name] = slo
    return SloTable(default, classes) if default is not None else SloTable(classes=classes)
