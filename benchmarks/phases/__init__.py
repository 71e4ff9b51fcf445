"""The prefill-vs-decode phase benchmark: each phase timed directly on pdsim's engine, explained by a roofline."""
