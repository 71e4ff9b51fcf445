"""pdsim: a small, real, disaggregated LLM inference server and the experiment bench around it."""

__version__ = "0.1.0"
