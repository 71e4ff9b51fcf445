"""Benchmarks of emulated devices: the time dilation a cluster shape needs (`python -m benchmarks.emulation
overhead`) and how well an emulated twin predicts a real cluster (`python -m benchmarks.emulation fidelity`)."""
