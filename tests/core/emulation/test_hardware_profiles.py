"""The shipped hardware profiles: each loads, every number has a source, and malformed files are refused."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pdsim.core.emulation.hardware import load_profile, parse_profile, profile_ids

REQUIRED = {"h100-sxm", "h100-pcie", "h200", "a100-80gb", "l40s", "b200", "mi300x", "m2-ultra", "m3-max"}


def _raw(profile_id: str) -> dict[str, Any]:
    text = resources.files("pdsim.core.emulation").joinpath("profiles", f"{profile_id}.toml").read_text()
    return tomllib.loads(text)


def test_every_required_accelerator_is_shipped() -> None:
    assert set(profile_ids()) >= REQUIRED


@pytest.mark.parametrize("profile_id", sorted(REQUIRED))
def test_every_figure_has_a_source(profile_id: str) -> None:
    profile = load_profile(profile_id)
    assert profile.id == profile_id
    figures = profile.figures()
    assert len(figures) == 11  # three peaks, three memory, two link, three efficiency figures
    for name, figure in figures:
        assert len(figure.source.strip()) > 10, f"{profile_id}: {name} has no real source"


def test_the_emulated_prefix_and_the_published_h100_figures() -> None:
    h100 = load_profile("emulated:h100-sxm")
    assert (h100.peak("bfloat16"), h100.memory_bandwidth.value, h100.memory_size.value) == (989.4e12, 3.35e12, 80e9)
    assert h100.peak("float32") < h100.peak("float16") == h100.peak("bfloat16")


def test_a_profile_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(resources.files("pdsim.core.emulation").joinpath("profiles", "l40s.toml").read_text())
    assert load_profile(str(path)) == load_profile("l40s")


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown hardware profile 'h900'; profiles: a100-80gb, b200"):
        load_profile("emulated:h900")


def test_a_figure_without_a_source_is_refused() -> None:
    data = _raw("h100-sxm")
    data["memory"]["bandwidth"] = {"value": 3.35e12}
    with pytest.raises(ValueError, match="a figure is"):
        parse_profile(data)
    data["memory"]["bandwidth"] = {"value": 3.35e12, "source": " "}
    with pytest.raises(ValueError, match=r"the figure 3350000000000\.0 has no source"):
        parse_profile(data)


@pytest.mark.parametrize(
    "table,key,value,message",
    [
        ("efficiency", "bandwidth", 1.2, r"bandwidth efficiency must be in \(0, 1\], got 1.2"),
        ("efficiency", "flop", 0, r"flop efficiency must be in \(0, 1\], got 0.0"),
        ("memory", "size", -1, r"memory size B must be > 0, got -1.0"),
        ("efficiency", "step_overhead_s", -0.1, r"step overhead must be >= 0 s, got -0.1"),
    ],
)
def test_out_of_range_figures_are_refused(table: str, key: str, value: float, message: str) -> None:
    data = _raw("h100-sxm")
    data[table][key]["value"] = value
    with pytest.raises(ValueError, match=message):
        parse_profile(data)


def test_a_typo_in_a_key_is_refused() -> None:
    data = _raw("h100-sxm")
    data["efficiency"]["bandwith"] = data["efficiency"].pop("bandwidth")
    with pytest.raises(ValueError, match=r"h100-sxm: \[efficiency\] needs keys"):
        parse_profile(data)
