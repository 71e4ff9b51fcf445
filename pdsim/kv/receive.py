"""A decode node's side of PushKv: one stream of frames checked and written, chunk by chunk, into staging.

`KvReceiver` owns the node's staging arena (sized here from the model and the engine configuration), turns a
stream of decoded frames into a committed `StagedEntry` or a pdsim error, and ends leases nobody claimed. It
knows nothing of gRPC: the servicer hands it the frames and maps its errors to status codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pdsim.core.errors import InvalidRequest
from pdsim.engine.config import EngineConfig
from pdsim.kv.codec import KvAssembler, KvChunk, KvHeader, check_header
from pdsim.kv.frames import KvFrame
from pdsim.kv.staging import KvStaging, StagedEntry
from pdsim.models.loading import ModelInfo

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
    def __init__(self, staging: KvStaging, model_fingerprint: str, max_context: int) -> None:
        self.staging = staging
        self._fingerprint = model_fingerprint
        self._max_context = max_context

    @classmethod
    def for_model(cls, info: ModelInfo, config: EngineConfig) -> KvReceiver:
        """Allocates (and touches) the whole arena now, so no push pays for page faults."""
        tokens = config.staging_tokens or STAGED_CONTEXTS * info.limits.max_context
        return cls(KvStaging(info.layout, tokens, config.kv_lease_seconds), info.fingerprint, info.limits.max_context)

    async def receive(self, frames: AsyncIterator[KvFrame | InvalidRequest]) -> Receipt:
        """Read one PushKv stream: a header, then every chunk in order. On any error (or cancellation) nothing is
        kept; on success the entry is committed and its lease has started."""
        staging = self.staging
        entry: StagedEntry | None = None
        committed = False
        try:
            header = _checked(await anext(aiter(frames), None))
            if not isinstance(header, KvHeader):
                raise InvalidRequest("a PushKv stream must start with a KV header")
            check_header(header, self._fingerprint, staging.layout, self._max_context)
            entry = staging.reserve(header.request_id, header.num_tokens)
            started = time.perf_counter()
            assembler = KvAssembler(header, entry.buffer)
            async for frame in frames:
                chunk = _checked(frame)
                if not isinstance(chunk, KvChunk):
                    raise InvalidRequest("a PushKv stream carries one header, then chunks only")
                assembler.add(chunk)
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
