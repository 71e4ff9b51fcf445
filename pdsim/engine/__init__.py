"""The engine: model runner, KV store, schedulers and sampler. It knows nothing of gRPC or asyncio."""
