"""The phase benchmark's FLOP and byte counts, against arithmetic written out by hand for a small config."""

from __future__ import annotations

import pytest

from pdsim.core.emulation.costs import decode_cost, prefill_cost
from pdsim.core.emulation.shape import ModelShape
from pdsim.models.byte_tokenizer import VOCAB_SIZE
from pdsim.models.presets import PRESETS

# hidden 64, 2 layers, 4 heads of 16, 2 KV heads, intermediate 128, vocab 256.
SHAPE = ModelShape(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=128, vocab=256)

LAYER = 64 * 16 * 4 + 64 * 16 * 2 + 64 * 16 * 2 + 16 * 4 * 64 + 3 * 64 * 128  # q, k, v, o, gate/up/down = 36,864
MATMUL = 2 * LAYER + 256 * 64  # + LM head = 90,112
READ = MATMUL + (2 * 2 + 1) * 64  # + two norms per layer and the final norm = 90,432
KV_PER_TOKEN = 2 * 2 * 2 * 16  # keys and values x layers x KV heads x head dim = 128 elements


def test_shape_counts() -> None:
    # The hand arithmetic above; its results (in its comments) are the figures the cost tests below build on.
    assert (SHAPE.layer_matmul_params, SHAPE.matmul_params, SHAPE.read_params) == (LAYER, MATMUL, READ)
    assert SHAPE.kv_elements_per_token == KV_PER_TOKEN


def test_decode_step_batch_2_context_16_bf16() -> None:
    cost = decode_cost(SHAPE, batch=2, context=16, dtype="bfloat16")
    assert cost.linear_flops == 2 * 2 * 2 * 36_864 == 294_912  # 2 FLOPs x 2 rows x 2 layers x layer params
    # Each row's new token attends to 16 cached keys + its own: 2 (QK^T, AV) x 2 FLOPs x 16 x 4 heads x 2 layers.
    assert cost.attention_flops == 2 * 2 * 16 * 4 * 2 * (2 * 17) == 17_408
    assert cost.head_flops == 2 * 2 * 64 * 256 == 65_536
    assert cost.flops == 377_856
    assert cost.weight_bytes == (90_432 + 2 * 64) * 2 == 181_120  # weights once + 2 embedding rows, 2 bytes each
    assert cost.kv_read_bytes == 2 * 17 * 128 * 2 == 8_704
    assert cost.kv_write_bytes == 2 * 128 * 2 == 512
    assert cost.bytes == 190_336
    assert cost.intensity == pytest.approx(377_856 / 190_336)


def test_prefill_batch_2_length_16_bf16() -> None:
    cost = prefill_cost(SHAPE, batch=2, length=16, dtype="bfloat16")
    assert cost.linear_flops == 2 * 32 * 2 * 36_864 == 4_718_592  # 32 tokens
    # Causal: token i attends to i + 1 keys, 16 x 17 / 2 = 136 pairs per prompt.
    assert cost.attention_flops == 2 * 2 * 16 * 4 * 2 * (2 * 136) == 139_264
    assert cost.head_flops == 2 * 2 * 64 * 256 == 65_536  # the LM head only on each prompt's last token
    assert cost.flops == 4_923_392
    assert cost.weight_bytes == (90_432 + 32 * 64) * 2 == 184_960
    assert cost.kv_read_bytes == 0
    assert cost.kv_write_bytes == 32 * 128 * 2 == 8_192
    assert cost.bytes == 193_152


def test_float32_doubles_the_bytes_not_the_flops() -> None:
    half, full = decode_cost(SHAPE, 2, 16, "bfloat16"), decode_cost(SHAPE, 2, 16, "float32")
    assert full.flops == half.flops and full.bytes == 2 * half.bytes


def test_from_hf_config() -> None:
    config = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 128, "vocab_size": 256, "head_dim": None}  # fmt: skip
    assert ModelShape.from_config(config) == SHAPE


def _small() -> ModelShape:
    p = PRESETS["small"]
    return ModelShape(p.hidden_size, p.num_layers, p.num_heads, p.num_kv_heads, p.hidden_size // p.num_heads,
                      p.intermediate_size, VOCAB_SIZE)  # fmt: skip


@pytest.mark.parametrize("dtype,per_batch", [("bfloat16", 1.0), ("float32", 0.5)])
@pytest.mark.parametrize("batch", [1, 2, 4, 8, 16, 32, 64])
def test_decode_intensity_is_about_the_batch_for_short_contexts(batch: int, dtype: str, per_batch: float) -> None:
    # Weights dominate the bytes: 2 FLOPs per weight per row over one read of each weight (2 or 4 bytes).
    assert decode_cost(_small(), batch, 0, dtype).intensity / batch == pytest.approx(per_batch, rel=0.03)
    # 16 cached tokens per row already add KV reads: 64 x 17 x 8 KiB is a fifth of the weights at batch 64.
    assert decode_cost(_small(), batch, 16, dtype).intensity / batch == pytest.approx(per_batch, rel=0.2)


@pytest.mark.parametrize("batch", [1, 64])
def test_long_context_decode_intensity_tends_to_the_query_group_size(batch: int) -> None:
    # Attention reads each cached key and value once and uses it for heads / kv_heads = 2 query heads:
    # 4 x head_dim x 8 heads FLOPs over 2 x head_dim x 4 KV heads x 2 bytes = 2 FLOP/byte in bf16.
    assert decode_cost(_small(), batch, 1_000_000, "bfloat16").intensity == pytest.approx(2.0, rel=0.01)


def test_prefill_intensity_grows_with_the_tokens() -> None:
    assert prefill_cost(SHAPE, 1, 512, "bfloat16").intensity > 10 * decode_cost(SHAPE, 1, 16, "bfloat16").intensity


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="batch must be > 0, got 0"):
        decode_cost(SHAPE, 0, 16, "bfloat16")
    with pytest.raises(ValueError, match="context must be >= 0, got -1"):
        decode_cost(SHAPE, 1, -1, "bfloat16")
    with pytest.raises(ValueError, match="heads \\(4\\) must be a multiple of kv_heads \\(3\\)"):
        ModelShape(64, 2, 4, 3, 16, 128, 256)
