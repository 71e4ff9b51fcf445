"""The phase benchmark end to end on the `tiny` preset with tiny sizes: every result field, and the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.phases.config import PhasesConfig
from benchmarks.phases.main import run_phases
from benchmarks.phases.roofs import spec_peaks
from pdsim.core.emulation.shape import ModelShape
from pdsim.engine.build import load_engine_model
from pdsim.models.spec import ModelSpec

POINT_FIELDS = {"phase", "batch", "context", "steps", "step_s", "tokens_per_s", "flops_per_step", "bytes_per_step",
                "intensity", "flops_per_s", "bytes_per_s", "mfu", "mbu", "bound", "of_roofline"}  # fmt: skip


def test_tiny_run_writes_every_field_and_the_roofline(tmp_path: Path) -> None:
    config = PhasesConfig(
        model=ModelSpec("tiny", "cpu", "float32"), requests=2, input_tokens=8, output_tokens=4, batches=(1, 2),
        contexts=(4, 16), steps=2, warmup=1, prefill_batches=(1, 2), prefill_lengths=(8,), repeats=1,
        mixed_decodes=(2,), mixed_chunks=(4, 8), mixed_context=6, matmul_size=128, copy_mib=1, output=tmp_path,
    )  # fmt: skip
    lines: list[str] = []
    returned = run_phases(config, log=lines.append)
    results: dict[str, Any] = json.loads((tmp_path / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))

    assert results["setup"]["threads"] == 1 and results["setup"]["model"] == "tiny"
    measured = results["peaks"]["measured"]
    assert measured["flops_per_s"] > 0 and measured["bytes_per_s"] > 0
    assert measured["ridge_flop_per_byte"] == pytest.approx(measured["flops_per_s"] / measured["bytes_per_s"])
    assert results["peaks"]["spec"] is None  # no spec sheet for a CPU

    headline = results["headline"]
    assert set(headline["prefill"]) == set(headline["decode"]) == POINT_FIELDS
    assert headline["prefill"]["tokens_per_s"] == pytest.approx(2 * 8 / headline["prefill_s"])
    assert headline["decode"]["steps"] == 3  # tokens 2..4; token 1 comes from the prefill
    assert headline["decode"]["tokens_per_s"] == pytest.approx(2 * 3 / headline["decode_s"])
    assert headline["prefill_over_decode_tokens_per_s"] == pytest.approx(
        headline["prefill"]["tokens_per_s"] / headline["decode"]["tokens_per_s"]
    )

    assert [(p["batch"], p["context"]) for p in results["prefill"]] == [(1, 8), (2, 8)]
    assert [(p["batch"], p["context"]) for p in results["decode"]] == [(1, 4), (2, 4), (1, 16), (2, 16)]
    for point in results["prefill"] + results["decode"]:
        assert set(point) == POINT_FIELDS
        assert point["intensity"] == pytest.approx(point["flops_per_step"] / point["bytes_per_step"])
        assert point["flops_per_s"] == pytest.approx(point["flops_per_step"] / point["step_s"])
        assert point["mfu"] == pytest.approx(point["flops_per_s"] / measured["flops_per_s"])
        assert point["mbu"] == pytest.approx(point["bytes_per_s"] / measured["bytes_per_s"])
    assert set(results["claims"]["decode_intensity_over_batch"]) == {"1", "2"}
    assert [(p["decodes"], p["chunk"], p["context"]) for p in results["mixed"]] == [(2, 4, 6), (2, 8, 6)]
    for point in results["mixed"]:
        assert point["saved"] == pytest.approx(1 - point["mixed_s"] / (point["decode_s"] + point["prefill_s"]))

    png = tmp_path / "roofline.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert any(line.startswith("prefill tok/s / decode tok/s") for line in lines)


def test_cost_model_counts_every_weight_of_the_tiny_model() -> None:
    model, _ = load_engine_model(ModelSpec("tiny"))
    config: Any = model.config
    shape = ModelShape.from_config(config.to_dict())
    embedding = shape.vocab * shape.hidden  # a lookup: only the rows used are read
    assert shape.read_params + embedding == sum(p.numel() for p in model.parameters())


def test_spec_sheets_by_device_name() -> None:
    h100 = spec_peaks("NVIDIA H100 80GB HBM3", "bfloat16")
    assert h100 is not None and (h100.flops_per_s, h100.bytes_per_s) == (989e12, 3.35e12)
    assert h100.ridge == pytest.approx(295, abs=1)
    a100 = spec_peaks("NVIDIA A100-SXM4-80GB", "float16")
    assert a100 is not None and (a100.flops_per_s, a100.bytes_per_s) == (312e12, 2.0e12)
    assert spec_peaks("NVIDIA H100 80GB HBM3", "float32") is None
    assert spec_peaks("Intel(R) Xeon(R) Processor", "bfloat16") is None


@pytest.mark.parametrize(
    "field,value,message",
    [("requests", 0, "requests must be > 0, got 0"), ("output_tokens", 1, "output_tokens must be >= 2"),
     ("batches", (1, 0), "batches must be one or more numbers > 0, got \\(1, 0\\)"),
     ("contexts", (), "contexts must be one or more numbers >= 0")],
)  # fmt: skip
def test_config_names_the_bad_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PhasesConfig(**{field: value})  # type: ignore[arg-type]
