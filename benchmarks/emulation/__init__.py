"""Benchmarks of emulated devices: the time dilation a cluster shape needs (`python -m benchmarks.emulation
overhead`), how well an emulated twin predicts a real cluster (`... fidelity`), and what a node costs to start
(`... startup`)."""
