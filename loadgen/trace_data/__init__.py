"""The public request traces pdsim ships (see README.md here), read through `importlib.resources`."""
