"""A decode node's side of PushKv: one stream of frames checked and written, chunk by chunk, into staging.

`KvReceiver` owns the node's staging arena (sized here from the model and the engine configuration), turns a
stream of decoded frames into a committed `StagedEntry` or a pdsim error, and ends leases nobody claimed. A push
is bounded in time: it is dropped when it sends nothing for `stall_seconds` or outlives its lease (which starts
with the push), so a hung or dead sender never holds staging. It knows nothing of gRPC: the servicer hands it
the frames and maps its errors to status codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pdsim.core.errors import Aborted, DeadlineExceeded, InvalidRequest
from pdsim.engine.config import EngineConfig
from pdsim.kv.codec import KvAssembler, KvChunk, KvHeader, check_header
from pdsim.kv.frames import KvFrame
from pdsim.kv.staging import KvStaging, StagedEntry
from pdsim.models.info import ModelInfo

log = logging.getLogger(__name__)

LEASE_CHECK_SECONDS = 0.1
STAGED_CONTEXTS = 4  # the default arena holds this many full contexts waiting for their Decode


@dataclass(frozen=True, slots=True)
class Receipt:
    """One request's KV, complete and checked, waiting in staging under its lease."""

    entry: StagedEntry
    bytes: int
    seconds: float  # from the arena reservation to the last chunk


def _checked(frame: KvFrame | InvalidRequest) -> KvFrame:
    if isinstance(frame, InvalidRequest):  # `decode_kv_frame` returns malformed frames as errors
        raise frame
    return frame


class KvReceiver:
    def __init__(
        self, staging: KvStaging, model_fingerprint: str, max_context: int, stall_seconds: float = 5.0
    ) -> None:
        self.staging = staging
        self.stall_seconds = stall_seconds
        self._fingerprint = model_fingerprint
        self._max_context = max_context

    @classmethod
    def for_model(cls, info: ModelInfo, config: EngineConfig) -> KvReceiver:
        """Allocates (and touches) the whole arena now, so no push pays for page faults."""
        tokens = config.staging_tokens or STAGED_CONTEXTS * info.limits.max_context
        staging = KvStaging(info.wire_layout, tokens, config.kv_lease_seconds)
        return cls(staging, info.fingerprint, info.limits.max_context, config.kv_push_stall_seconds)

    async def _next(
        self, frames: AsyncIterator[KvFrame | InvalidRequest], entry: StagedEntry | None
    ) -> KvFrame | InvalidRequest | None:
        """The next frame (None at the end), waiting no longer than the stall limit or what is left of the lease."""
        wait = self.stall_seconds if entry is None else min(self.stall_seconds, self.staging.seconds_left(entry))
        try:
            async with asyncio.timeout(wait):
                return await anext(frames, None)
        except TimeoutError:
            which = "" if entry is None else f" of request {entry.request_id!r}"
            if wait < self.stall_seconds:
                why = f"did not complete within its lease of {self.staging.lease_seconds:g} s"
            else:
                why = f"sent nothing for {self.stall_seconds:g} s"
            raise DeadlineExceeded(f"the KV push{which} {why}: dropped, its staging freed") from None

    async def receive(self, frames: AsyncIterator[KvFrame | InvalidRequest]) -> Receipt:
        """Read one PushKv stream: a header, then every chunk in order. On any error (or cancellation) nothing is
        kept; on success the entry is committed (its lease started with the reservation)."""
        staging = self.staging
        entry: StagedEntry | None = None
        committed = False
        frames = aiter(frames)
        try:
            header = _checked(await self._next(frames, None))
            if not isinstance(header, KvHeader):
                raise InvalidRequest("a PushKv stream must start with a KV header")
            check_header(header, self._fingerprint, staging.layout, self._max_context)
            entry = staging.reserve(header.request_id, header.num_tokens)
            started = time.perf_counter()
            assembler = KvAssembler(header, entry.buffer)
            while (frame := await self._next(frames, entry)) is not None and not entry.dropped:
                chunk = _checked(frame)
                if not isinstance(chunk, KvChunk):
                    raise InvalidRequest("a PushKv stream carries one header, then chunks only")
                assembler.add(chunk)
            if entry.dropped:
                raise Aborted(f"request {header.request_id!r} was cancelled while its KV arrived: not staged")
            assembler.finish()
            staging.commit(entry)
            committed = True
            return Receipt(entry, header.total_bytes, time.perf_counter() - started)
        finally:
            if entry is not None and not committed:  # refused, corrupted, cancelled: nothing is kept
                entry.release()

    async def expire_leases(self, period: float = LEASE_CHECK_SECONDS) -> None:
        """Free KV whose lease ended, every `period` seconds, until cancelled."""
        while True:
            await asyncio.sleep(period)
            for request_id in self.staging.expire():
                log.info("KV lease of request %s ended unclaimed; freed", request_id)
