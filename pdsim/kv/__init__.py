"""Everything about moving a KV cache between nodes, servicers aside.

- `codec`: the header, and each layer cut into checksummed chunks (wire-free);
- `frames`: those headers and chunks in the protobuf wire format of PushKv, without protobuf's copies;
- `send`: a prefill node's push of one request's KV to the first decode node that takes it;
- `receive`: a decode node's side of PushKv: each stream checked chunk by chunk into staging, the arena's size,
  and the leases nobody claimed;
- `staging`: the decode node's arena where pushed KV waits, under a lease, for a Decode to claim it.

The layout these share (`pdsim.core.kv_layout`) is a model fact the engine needs too, so it lives in the core.
"""
