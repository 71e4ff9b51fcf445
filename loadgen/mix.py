"""Request mixes: weighted request classes with length distributions and per-class SLOs, from TOML or YAML.

name = "chat"
[[classes]]
name = "chat"
weight = 1.0
input = { dist = "lognormal", median = 200, sigma = 0.6, low = 16, high = 1024 }
output = 64                       # or { dist = "uniform", low = 32, high = 128 }
slo = { ttft = 1.5, tpot = 0.1 }  # seconds; e2el optional
ignore_eos = true                 # generate exactly the drawn output length (default)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadgen.distributions import LengthDistribution, parse_distribution
from pdsim.core.slo import Slo, SloTable

MIXES_DIR = Path(__file__).resolve().parent / "mixes"


@dataclass(frozen=True, slots=True)
class RequestClass:
    name: str
    weight: float
    input: LengthDistribution
    output: LengthDistribution
    slo: Slo
    ignore_eos: bool = True


@dataclass(frozen=True, slots=True)
class Mix:
    name: str
    classes: tuple[RequestClass, ...]

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError(f"mix {self.name!r} has no classes")
        if any(c.weight <= 0 for c in self.classes):
            raise ValueError(f"mix {self.name!r}: every class weight must be > 0")

    @property
    def slos(self) -> dict[str, Slo]:
        return {c.name: c.slo for c in self.classes}

    def slo_table(self) -> SloTable:
        """The router's view of these SLOs; a request of no class here gets the strictest one."""
        strictest = min((c.slo for c in self.classes), key=lambda s: (s.ttft, s.tpot))
        return SloTable(default=strictest, classes=self.slos)


def resolve_mix(name_or_path: str) -> Path:
    """A shipped mix by name (see loadgen/mixes/) or a file."""
    for suffix in (".toml", ".yaml", ".yml"):
        shipped = MIXES_DIR / f"{name_or_path}{suffix}"
        if shipped.is_file():
            return shipped
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in MIXES_DIR.iterdir()))
        raise ValueError(f"mix {name_or_path!r} is neither a file nor a shipped mix ({names})")
    return path


def load_mix(name_or_path: str) -> Mix:
    path = resolve_mix(name_or_path)
    text = path.read_text()
    data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)
    return parse_mix(data, str(path))


def parse_mix(data: Mapping[str, Any], where: str) -> Mix:
    classes = []
    for i, spec in enumerate(data.get("classes", [])):
        name = str(spec.get("name", f"class{i}"))
        here = f"{where}: class {name!r}"
        if "input" not in spec or "output" not in spec:
            raise ValueError(f"{here}: needs input and output lengths")
        slo = spec.get("slo")
        if not isinstance(slo, Mapping) or "ttft" not in slo or "tpot" not in slo:
            raise ValueError(f"{here}: needs slo = {{ ttft = SECONDS, tpot = SECONDS }}")
        classes.append(
            RequestClass(
                name=name,
                weight=float(spec.get("weight", 1.0)),
                input=parse_distribution(spec["input"], f"{here} input"),
                output=parse_distribution(spec["output"], f"{here} output"),
                slo=Slo(float(slo["ttft"]), float(slo["tpot"]), float(slo["e2el"]) if "e2el" in slo else None),
                ignore_eos=bool(spec.get("ignore_eos", True)),
            )
        )
    return Mix(str(data.get("name", Path(where).stem)), tuple(classes))  # "description" is for the reader
