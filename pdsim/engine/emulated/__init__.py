"""Emulated devices: the engine's runner and KV store on a modeled accelerator, without torch.

`runner` sleeps for the cost model's step time (`pdsim.core.emulation.step_time`) and returns deterministic
tokens; `kv_store` only counts tokens, with the capacity the profile's memory leaves; `build` assembles an
engine from them. The schedulers, the engine loop and everything above run unchanged.
"""
