"""Emulated accelerators: hardware profiles, model shapes and the cost model that times a step on a profile.

Plain Python (no torch): an emulated node, the phase benchmark and `pdsim estimate` all count FLOPs and bytes
here, from a model's config alone, so a modeled step and a measured one are counted the same way. What runs the
model or sleeps for the modeled time lives above; this package only computes.
"""
