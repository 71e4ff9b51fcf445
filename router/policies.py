"""Routing policies: the order in which to try a pool's nodes for the next request."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from router.config import Policy
from router.nodes import NodeHandle


class RoutingPolicy(Protocol):
    def rank(self, nodes: Sequence[NodeHandle]) -> list[NodeHandle]: ...


class RoundRobin:
    def __init__(self) -> None:
        self._counter = itertools.count()

    def rank(self, nodes: Sequence[NodeHandle]) -> list[NodeHandle]:
        start = next(self._counter) % len(nodes)
        return [*nodes[start:], *nodes[:start]]


class LeastLoaded:
    """Fewest requests first: this router's in-flight count (exact, instant) or what the node last reported,
    whichever is larger; then most free KV; remaining ties rotate, so equal nodes share a burst."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def rank(self, nodes: Sequence[NodeHandle]) -> list[NodeHandle]:
        turn = next(self._counter)
        order = {id(node): (i - turn) % len(nodes) for i, node in enumerate(nodes)}
        return sorted(nodes, key=lambda node: (*self._score(node), order[id(node)]))

    @staticmethod
    def _score(node: NodeHandle) -> tuple[int, int]:
        load = node.load
        if load is None:
            return (node.inflight, 0)
        reported = load.waiting + load.running
        return (max(node.inflight, reported), load.kv_bytes_held - load.kv_bytes_capacity)


def make_policy(policy: Policy) -> RoutingPolicy:
    return RoundRobin() if policy is Policy.ROUND_ROBIN else LeastLoaded()
