"""The core: errors, request validation, SLOs, topology (roles and modes), the KV layout.

Plain Python (no torch, no grpc): every other layer builds on it, and it imports none of them.
"""
