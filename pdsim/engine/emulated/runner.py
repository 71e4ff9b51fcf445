"""The emulated model runner: each step takes the cost model's time on the profile, times the dilation.

The step's segments (one new token on each decode row's context, each chunk's tokens on its cached prefix) go
to `step_time`, exactly as the phase benchmark counts a real step. The runner sleeps until the step's modeled
time x dilation has passed since it began, so the engine's own work within a step is absorbed rather than added
(a step whose bookkeeping took longer runs late). It returns the modeled time with the tokens: the node counts it
(`pdsim_step_modeled_seconds`) against the step's real length.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pdsim.core.emulation.hardware import HardwareProfile
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.emulation.step_time import step_time
from pdsim.engine.emulated.kv_store import AccountingKvStore
from pdsim.engine.emulated.tokens import emulated_logprobs, emulated_token
from pdsim.engine.step import SamplingRow, StepInput, StepOutput


class EmulatedRunner:
    def __init__(
        self,
        kv: AccountingKvStore,
        profile: HardwareProfile,
        shape: ModelShape,
        dtype: str,
        tp: int = 1,
        dilation: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kv = kv
        self.profile = profile
        self.shape = shape
        self.dtype = dtype
        self.tp = tp
        self.dilation = dilation
        self._sleep = sleep

    def run(self, step: StepInput) -> StepOutput:
        started = time.perf_counter()
        modeled = step_time(self.profile, self.shape, step.segments(), self.dtype, self.tp).seconds
        sampled: list[tuple[SamplingRow, int]] = [(r.sampling, r.position + 1) for r in step.decodes]
        sampled += [(c.sampling, c.start + len(c.prompt_ids)) for c in step.chunks if c.sampling is not None]
        tokens = [emulated_token(row, position) for row, position in sampled]
        logprobs = None
        if any(row.params.logprobs is not None for row, _ in sampled):
            logprobs = [emulated_logprobs(row, token) for (row, _), token in zip(sampled, tokens, strict=True)]
        left = started + modeled * self.dilation - time.perf_counter()
        if left > 0:
            self._sleep(left)
        return StepOutput(tokens, logprobs, modeled)
