"""The staging arena: every byte accounted for, leases expire, freed ranges are reused and coalesce."""

from __future__ import annotations

import pytest

from pdsim.core.errors import Aborted, NotFound, ResourceExhausted
from pdsim.core.kv_layout import KvLayout
from pdsim.kv.staging import KvStaging


def test_staging_accounts_every_byte_and_expires_leases() -> None:
    now = [0.0]
    layout = KvLayout(2, 2, 8, "float32")
    staging = KvStaging(layout, capacity_tokens=30, lease_seconds=5, clock=lambda: now[0])
    a = staging.reserve("a", 20)
    with pytest.raises(ResourceExhausted, match="no room"):
        staging.reserve("b", 20)
    with pytest.raises(NotFound, match="still arriving"):
        staging.claim("a")
    staging.commit(a)
    b = staging.reserve("b", 10)
    staging.commit(b)
    assert staging.held_bytes == 30 * layout.bytes_per_token
    staging.claim("b")  # claimed KV no longer expires
    now[0] = 6.0
    assert staging.expire() == ["a"]
    with pytest.raises(NotFound, match="unknown or its lease expired"):
        staging.claim("a")
    b.release()
    assert staging.held_bytes == 0 and len(staging) == 0


def test_staging_arena_reuses_and_coalesces_freed_ranges() -> None:
    layout = KvLayout(1, 1, 1, "float32")  # 8 bytes per token; the arena is 80 bytes
    staging = KvStaging(layout, capacity_tokens=10, lease_seconds=5)
    a, b, c = (staging.reserve(name, 3) for name in "abc")
    assert [e.start for e in (a, b, c)] == [0, 24, 48]
    with pytest.raises(ResourceExhausted):
        staging.reserve("d", 2)  # one token left
    b.release()
    e = staging.reserve("e", 2)
    assert e.start == 24  # first fit, into b's hole
    a.release()
    c.release()  # merges with the free bytes on both sides: 40..80
    assert staging.reserve("f", 5).start == 40
    e.release()  # 0..40 is one range again
    g = staging.reserve("g", 5)
    assert g.start == 0
    g.buffer[:] = bytes(range(40))
    assert staging.held_bytes == 80


def test_the_lease_starts_when_the_push_starts() -> None:
    now = [0.0]
    staging = KvStaging(KvLayout(1, 1, 1, "float32"), capacity_tokens=10, lease_seconds=5, clock=lambda: now[0])
    slow = staging.reserve("slow", 3)
    now[0] = 4.0  # a push that took 4 of its 5 seconds
    staging.commit(slow)
    assert staging.seconds_left(slow) == 1.0
    now[0] = 5.0
    assert staging.expire() == ["slow"]  # 5 s after the push started, not 5 s after it completed
    arriving = staging.reserve("arriving", 3)
    now[0] = 20.0
    assert staging.expire() == [] and len(staging) == 1  # still being written: its receiver drops it, not expire
    assert staging.seconds_left(arriving) == 0.0
    arriving.release()


def test_release_frees_unclaimed_kv_at_once_and_refuses_a_late_push() -> None:
    now = [0.0]
    staging = KvStaging(KvLayout(1, 1, 1, "float32"), capacity_tokens=10, lease_seconds=5, clock=lambda: now[0])
    staged = staging.reserve("staged", 3)
    staging.commit(staged)
    assert staging.release_id("staged") and staging.held_bytes == 0
    claimed = staging.reserve("claimed", 3)
    staging.commit(claimed)
    staging.claim("claimed")
    assert not staging.release_id("claimed") and len(staging) == 1  # its Decode's cancellation frees it
    claimed.release()
    assert not staging.release_id("late")  # released before its push arrived
    with pytest.raises(Aborted, match="'late' was cancelled"):
        staging.reserve("late", 3)
    now[0] = 6.0
    staging.expire()  # forgotten after one lease: the id may be used again
    staging.reserve("late", 3).release()
    assert staging.held_bytes == 0 and len(staging) == 0
