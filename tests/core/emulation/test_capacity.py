"""KV capacity: what is left of the usable memory after the weights, in tokens, per tensor-parallel degree."""

from __future__ import annotations

import pytest

from pdsim.core.emulation.capacity import kv_capacity
from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.shape import ModelShape


def test_llama_3_1_8b_on_one_h100() -> None:
    capacity = kv_capacity(load_profile("h100-sxm"), load_model_config("llama-3.1-8b").shape, "bfloat16")
    # 0.9 x 80 GB usable - 8,030,261,248 weights x 2 bytes, over 2 x 32 layers x 8 KV heads x 128 x 2 bytes.
    assert capacity.usable_bytes == 72e9
    assert capacity.weight_bytes == 16_060_522_496
    assert capacity.kv_bytes_per_token == 131_072
    assert capacity.tokens == (72_000_000_000 - 16_060_522_496) // 131_072 == 426_784


def test_llama_3_1_70b_needs_tensor_parallelism_on_h100s() -> None:
    h100, shape = load_profile("h100-sxm"), load_model_config("llama-3.1-70b").shape
    with pytest.raises(ValueError, match=r"141.1 GB per GPU in bfloat16 at --tp 1, more than h100-sxm's usable "
                                         r"72.0 GB \(0.9 of 80 GB\); use --tp 2 or more"):  # fmt: skip
        kv_capacity(h100, shape, "bfloat16")
    four = kv_capacity(h100, shape, "bfloat16", tp=4)
    # Each rank holds a quarter of the weights and of each token's KV (2 of the 8 KV heads).
    assert four.weight_bytes == pytest.approx(141.1e9 / 4, rel=1e-3)
    assert four.kv_bytes_per_token == 2 * 80 * 8 * 128 * 2 / 4 == 81_920
    assert four.tokens == int((72e9 - 70_553_706_496 * 2 / 4) // 81_920) > 400_000


def test_the_error_names_the_smallest_tp_that_fits() -> None:
    # Qwen2.5-72B: 145.4 GB in bf16; an L40S plans for 0.9 x 48 GB = 43.2 GB, so 4 ranks of 36.4 GB.
    with pytest.raises(ValueError, match="use --tp 4 or more"):
        kv_capacity(load_profile("l40s"), load_model_config("qwen2.5-72b").shape, "bfloat16", tp=2)


def test_when_no_tp_fits_the_error_says_so() -> None:
    # A 70B shape with only 2 KV heads can split over 2 ranks at most: 70 GB each, too much for an L40S.
    shape = ModelShape(8192, 80, 64, 2, 128, 28672, 128256)
    with pytest.raises(ValueError, match="choose a device with more memory"):
        kv_capacity(load_profile("l40s"), shape, "bfloat16")
