"""Prefill nodes: compute a prompt's KV cache and first token, push the KV to a decode node."""
