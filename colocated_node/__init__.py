"""Colocated workers: prefill and decode on one model, interleaved by the engine's scheduling policy."""
