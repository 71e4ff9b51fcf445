"""Decode nodes: receive KV from prefill nodes, then continue generation in a continuously batched engine."""
