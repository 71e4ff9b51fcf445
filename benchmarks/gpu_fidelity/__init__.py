"""`python -m benchmarks.gpu_fidelity`: a GPU's real step times against its emulated profile."""
