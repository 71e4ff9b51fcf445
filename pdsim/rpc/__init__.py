"""The gRPC layer shared by every process: generated stubs, conversions, status mapping, server plumbing."""
