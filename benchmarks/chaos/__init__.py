"""Chaos benchmark: a real `pdsim up` cluster under steady load while a seeded random node is killed, stopped or
restarted every ~20 s; it counts every request's ending (success, clear error, cancelled by its client, or lost)
and the KV each node still holds at the end. The fault tests in `tests/faults/` drive the same pieces.

    python -m benchmarks.chaos --minutes 5
"""
