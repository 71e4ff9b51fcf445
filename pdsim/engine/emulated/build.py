"""An emulated node's engine: the model's config (no weights), the device's profile, an accounting KV store.

The model is described as the router and the other nodes expect (`ModelInfo`): its context, its KV layout (for
sizes), and a fingerprint that marks it emulated, so its KV never lands on a real node. Its tokenizer is the
presets' byte tokenizer: emulated models have none here, so token counts of text prompts differ from the real
model's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from pdsim.core.emulation.capacity import kv_capacity
from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.kv_layout import KvLayout
from pdsim.core.preset_shapes import BYTE_VOCAB_SIZE
from pdsim.core.requests import ModelLimits
from pdsim.core.topology import Role
from pdsim.engine.assemble import BuiltEngine, assemble_engine
from pdsim.engine.config import EngineConfig
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.engine.emulated.kv_store import AccountingKvStore, stand_in_layout
from pdsim.engine.emulated.runner import EmulatedRunner
from pdsim.models.byte_tokenizer import EOS_ID, ensure_byte_tokenizer
from pdsim.models.info import ModelInfo
from pdsim.models.spec import ModelSpec


def build_emulated_engine(role: Role, spec: ModelSpec, config: EngineConfig, emulation: EmulationConfig) -> BuiltEngine:
    assert spec.emulated_profile is not None, spec.device
    profile = load_profile(spec.emulated_profile)
    model = load_model_config(spec.model)
    shape = model.shape
    capacity = kv_capacity(profile, shape, spec.dtype, emulation.tp)
    # No context longer than the device holds: the router then refuses a request that could never be admitted.
    max_context = min(model.max_context, spec.max_context or model.max_context, capacity.tokens)
    layout = KvLayout(shape.layers, shape.kv_heads, shape.head_dim, spec.dtype)
    store = AccountingKvStore(layout, config.max_batch, max_context, capacity.tokens)
    runner = EmulatedRunner(store, profile, shape, spec.dtype, emulation.tp, emulation.dilation)
    # What decides the cache's shape, not the hardware: a prefill node modeling one GPU may hand its KV to a
    # decode node modeling another (Splitwise), never to a real node.
    identity = {"model": asdict(shape), "dtype": spec.dtype}
    info = ModelInfo(
        name=model.name,
        path=ensure_byte_tokenizer(),
        fingerprint="emu-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12],
        limits=ModelLimits(max_context=max_context, vocab_size=max(shape.vocab, BYTE_VOCAB_SIZE)),
        eos_token_ids=frozenset({EOS_ID}),
        layout=layout,
        stand_in_layout=stand_in_layout(layout),
    )
    return assemble_engine(role, runner, info, config)
