"""The core: errors, request validation, SLOs, topology (roles and modes), the KV layout, the presets' shapes, and
the emulation cost model (hardware profiles, weightless model configs, step times).

Plain Python (no torch, no grpc): every other layer builds on it, and it imports none of them.
"""
