"""The load generator: workloads (arrivals, request mixes, traces), the async client, metric math, reports.

It talks to a router over gRPC only; it knows nothing of torch or of how the cluster is deployed.
"""
