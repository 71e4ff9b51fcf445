"""An engine for a role from a runner: the role's scheduler over the runner's KV store. Torch-free: the real
build (`pdsim.engine.build`) and the emulated one (`pdsim.engine.emulated.build`) both end here."""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.topology import Role
from pdsim.engine.config import EngineConfig
from pdsim.engine.engine import Engine
from pdsim.engine.prefill_scheduler import PrefillScheduler
from pdsim.engine.schedulers import ColocatedScheduler, DecodeScheduler, Scheduler
from pdsim.engine.step import KvStore, ModelRunner
from pdsim.models.info import ModelInfo


@dataclass(frozen=True, slots=True)
class BuiltEngine:
    engine: Engine
    info: ModelInfo
    store: KvStore
    runner: ModelRunner


def assemble_engine(role: Role, runner: ModelRunner, info: ModelInfo, config: EngineConfig) -> BuiltEngine:
    store = runner.kv
    scheduler_args = (store, config, info.eos_token_ids, info.limits.max_context)
    scheduler: Scheduler
    if role is Role.PREFILL:
        scheduler = PrefillScheduler(*scheduler_args)
    elif role is Role.DECODE:
        scheduler = DecodeScheduler(*scheduler_args)
    else:
        scheduler = ColocatedScheduler(*scheduler_args)
    engine = Engine(runner, scheduler, config.max_waiting, name=f"{role.value}-engine")
    return BuiltEngine(engine, info, store, runner)
