"""The cost model against hand arithmetic on a small shape, and against the seed's H100 decode figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pdsim.core.emulation.hardware import Figure, HardwareProfile, Interconnect, load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.emulation.step_time import Roof, at_peak, decode_step, mixed_step, prefill_step


def _f(value: float) -> Figure:
    return Figure(value, "test")


# The shape of tests/benchmarks/test_phase_costs.py, whose FLOP and byte counts are written out by hand there.
SHAPE = ModelShape(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=128, vocab=256)
# Round numbers: 1e10 FLOP/s and 1e9 B/s reached (half of each peak), so the ridge is at 10 FLOP/byte.
TOY = HardwareProfile(
    id="toy",
    name="toy",
    peak_flops={"bfloat16": _f(2e10), "float16": _f(2e10), "float32": _f(1e10)},
    memory_bandwidth=_f(2e9),
    memory_size=_f(1e9),
    usable_memory_fraction=_f(0.9),
    interconnect=Interconnect("wire", _f(1e8), _f(1e-5)),
    flop_efficiency=_f(0.5),
    bandwidth_efficiency=_f(0.5),
    step_overhead_s=_f(1e-3),
)


def test_decode_batch_2_context_16_is_memory_bound() -> None:
    step = decode_step(TOY, SHAPE, [16, 16], "bfloat16")
    gemms, attention, overhead = step.parts
    # GEMMs: 294,912 linear + 65,536 LM-head FLOPs; 181,120 bytes of weights. Memory: 181,120 / 1e9 s.
    assert (gemms.flops, gemms.bytes, gemms.roof) == (360_448, 181_120, Roof.MEMORY)
    assert gemms.seconds == pytest.approx(181_120 / 1e9)
    # Attention: 17,408 FLOPs; 8,704 bytes of KV read + 512 written.
    assert (attention.flops, attention.bytes, attention.roof) == (17_408, 9_216, Roof.MEMORY)
    assert attention.seconds == pytest.approx(9_216 / 1e9)
    assert (overhead.seconds, overhead.roof) == (1e-3, Roof.OVERHEAD)
    assert step.seconds == pytest.approx(181_120e-9 + 9_216e-9 + 1e-3)
    assert step.tokens_per_s == pytest.approx(2 / (190_336e-9 + 1e-3))
    assert step.bound is Roof.OVERHEAD  # a toy model on a toy device: the fixed cost dominates


def test_prefill_batch_2_length_16_gemms_are_compute_bound() -> None:
    step = prefill_step(TOY, SHAPE, [16, 16], "bfloat16")
    gemms, attention, _ = step.parts
    # 4,718,592 linear + 65,536 LM-head FLOPs over 184,960 bytes: 25.9 FLOP/byte, above the ridge of 10.
    assert (gemms.flops, gemms.roof) == (4_784_128, Roof.COMPUTE)
    assert gemms.seconds == pytest.approx(4_784_128 / 1e10)
    # 139,264 FLOPs over 8,192 bytes of KV written: 17 FLOP/byte, compute bound too.
    assert (attention.flops, attention.bytes, attention.roof) == (139_264, 8_192, Roof.COMPUTE)
    assert step.seconds == pytest.approx((4_784_128 + 139_264) / 1e10 + 1e-3)
    assert step.new_tokens == 32


def test_mixed_step_one_decode_row_and_a_chunk_after_a_cached_prefix() -> None:
    step = mixed_step(TOY, SHAPE, contexts=[16], chunks=[(8, 8)], dtype="bfloat16")
    gemms, attention, _ = step.parts
    # 9 new tokens: 2 x 9 x 2 layers x 36,864 + the LM head on 2 rows (2 x 2 x 64 x 256).
    assert gemms.flops == 1_327_104 + 65_536
    assert gemms.bytes == (90_432 + 9 * 64) * 2  # weights once + 9 embedding rows
    # Pairs: the decode row sees 17 keys; chunk token i sees 8 cached + i new: 8 x 8 + 36 = 100.
    assert attention.flops == 2 * 2 * 16 * 4 * 2 * (17 + 100)
    # KV read: the decode row's 17 keys and the chunk's 8 cached; written: 9 tokens; 128 elements x 2 bytes each.
    assert attention.bytes == (17 + 8) * 256 + 9 * 256
    assert step.new_tokens == 9


def test_tensor_parallel_2_halves_the_work_and_adds_two_all_reduces_a_layer() -> None:
    one, two = decode_step(TOY, SHAPE, [16, 16], "bfloat16"), decode_step(TOY, SHAPE, [16, 16], "bfloat16", tp=2)
    assert [p.name for p in two.parts] == ["gemms", "attention", "all-reduce", "overhead"]
    for single, split in zip(one.parts[:2], two.parts[:2], strict=True):
        assert (split.flops, split.bytes, split.seconds) == pytest.approx((single.flops / 2, single.bytes / 2,
                                                                           single.seconds / 2))  # fmt: skip
    # Each all-reduce: 2 tokens x 64 hidden x 2 bytes = 256 B; ring over 2 ranks moves 2(2-1)/2 x 256 B at 1e8 B/s,
    # plus 10 us of latency; 2 per layer x 2 layers.
    all_reduce = two.parts[2]
    assert (all_reduce.bytes, all_reduce.roof) == (4 * 256, Roof.INTERCONNECT)
    assert all_reduce.seconds == pytest.approx(4 * (256 / 1e8 + 1e-5))


def test_tensor_parallel_must_split_the_heads_evenly() -> None:
    with pytest.raises(ValueError, match=r"tp \(4\) must divide the attention heads \(4\) and the KV heads \(2\)"):
        decode_step(TOY, SHAPE, [16], "bfloat16", tp=4)


def test_the_seed_llama_3_8b_decode_on_an_h100() -> None:
    """Seed 003: 3.35 TB/s / 16 GB ~ 209 tokens/s at batch 1; at 60-80% bandwidth utilization, 125-167."""
    h100, shape = load_profile("emulated:h100-sxm"), load_model_config("llama-3.1-8b").shape
    # The seed's bound divides by the whole checkpoint (16.06 GB in bf16).
    assert 3.35e12 / (shape.stored_params * 2) == pytest.approx(208.6, abs=0.1)
    # A decode step reads one embedding row, not the 1.05 GB table: 7,504,924,672 weights x 2 bytes + 4,096 x 2
    # for the row, and at context 1024 the cache: 1,025 keys and values read + 1 written x 131,072 bytes each.
    step_bytes = 7_504_924_672 * 2 + 4096 * 2 + 1026 * 131_072
    ceiling = decode_step(at_peak(h100), shape, [1024], "bfloat16")
    assert ceiling.bound is Roof.MEMORY
    assert ceiling.tokens_per_s == pytest.approx(3.35e12 / step_bytes, rel=1e-9)  # 221.2 tokens/s
    assert ceiling.tokens_per_s == pytest.approx(221.2, abs=0.1)
    # With the profile's efficiency (0.70 of the bandwidth) and its 0.3 ms overhead: inside the seed's range.
    modeled = decode_step(h100, shape, [1024], "bfloat16")
    assert 125 <= modeled.tokens_per_s <= 167
    assert modeled.seconds == pytest.approx(step_bytes / (3.35e12 * 0.7) + 0.3e-3, rel=1e-3)  # FLOPs ~never bind
    # The seed's own arithmetic on its 16 GB: 60% and 80% of the bandwidth are its 125 and 167 tokens/s.
    for efficiency, seed_figure in ((0.6, 125), (0.8, 167)):
        assert 3.35e12 * efficiency / (shape.stored_params * 2) == pytest.approx(seed_figure, abs=1)
        plain = replace(h100, bandwidth_efficiency=_f(efficiency), step_overhead_s=_f(0.0))
        assert decode_step(plain, shape, [1024], "bfloat16").tokens_per_s == pytest.approx(221.2 * efficiency, rel=1e-3)


def test_long_prefills_on_an_h100_are_compute_bound() -> None:
    h100, shape = load_profile("h100-sxm"), load_model_config("llama-3.1-8b").shape
    step = prefill_step(h100, shape, [2048], "bfloat16")
    assert step.bound is Roof.COMPUTE
    # ~2 x 7.5e9 x 2048 FLOPs at 0.6 x 989.4 TFLOP/s, plus attention and the overhead.
    assert step.seconds == pytest.approx(2 * 7.5e9 * 2048 / (0.6 * 989.4e12), rel=0.05)
