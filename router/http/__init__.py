"""The router's OpenAI-compatible HTTP API: a thin translation around `router.frontend.Frontend`.

It parses OpenAI requests into pdsim's own (prompt, `SamplingParams`, stop strings) and pieces back into
OpenAI's JSON and server-sent events. It knows nothing of torch, gRPC or the nodes: only the `Frontend`.
"""
