"""Decode nodes (receive KV, continue generation) and colocated workers (both phases on one model)."""
