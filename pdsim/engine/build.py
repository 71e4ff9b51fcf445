"""Build a real engine for a role: pin the process to its cores, load the model, allocate the KV store."""

from __future__ import annotations

import os

import torch

from pdsim.core.topology import Role
from pdsim.engine.assemble import BuiltEngine, assemble_engine
from pdsim.engine.attention import ATTENTION_NAME, register_attention
from pdsim.engine.config import EngineConfig
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.model_runner import HfModelRunner
from pdsim.engine.step import TokenRules
from pdsim.models.info import ModelInfo
from pdsim.models.loading import load_model
from pdsim.models.spec import ModelSpec


def pin_cpus(cpus: tuple[int, ...] | None) -> None:
    """Give this process its own cores and one torch thread per core, so two nodes are two devices."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    torch.set_num_threads(len(cpus) if cpus is not None else 1)


def _check_kv_fits(nbytes: int, device: str, shape: str, remedy: str) -> None:
    """The KV store is allocated whole at start-up: refuse one that cannot fit rather than swap or crash."""
    if device.startswith("cuda"):
        available = torch.cuda.mem_get_info(torch.device(device))[0]
    elif device == "cpu" and hasattr(os, "sysconf"):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    else:
        return
    if nbytes > 0.8 * available:
        raise ValueError(
            f"the KV store needs {nbytes / 2**30:.1f} GiB ({shape}) but "
            f"{available / 2**30:.1f} GiB is free on {device}; {remedy}"
        )


def build_runner(
    model: torch.nn.Module, info: ModelInfo, spec: ModelSpec, num_slots: int, max_tokens: int, remedy: str
) -> HfModelRunner:
    """The model runner over a new KV store of `num_slots` x `max_tokens`, refused before it is allocated if it
    cannot fit; `remedy` names the caller's options that shrink it."""
    nbytes = SlotKvStore.bytes_for(info.layout, num_slots, max_tokens)
    _check_kv_fits(nbytes, spec.device, f"{num_slots} slots x {max_tokens} tokens", remedy)
    store = SlotKvStore(info.layout, num_slots, max_tokens, spec.device)
    rules = TokenRules(suppress=info.suppress_token_ids, eos=info.eos_token_ids)
    return HfModelRunner(model, store, rules=rules)


def load_engine_model(spec: ModelSpec) -> tuple[torch.nn.Module, ModelInfo]:
    """Load a model whose attention writes into pdsim's KV store (see `pdsim.engine.attention`)."""
    register_attention()
    return load_model(spec, ATTENTION_NAME)


def build_engine(role: Role, spec: ModelSpec, config: EngineConfig) -> BuiltEngine:
    model, info = load_engine_model(spec)
    runner = build_runner(
        model, info, spec, config.max_batch, info.limits.max_context, "lower --max-batch or --max-context"
    )
    return assemble_engine(role, runner, info, config)
