"""KV transfer bandwidth: one request's KV pushed by pdsim's sender to a decode node process (chunked gRPC,
checksummed, written into pre-allocated staging) against raw loopback TCP moving the same bytes into a
pre-allocated buffer in another process.

    python -m benchmarks.kv_transfer [--model small] [--dtype float32] [--tokens 2048] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time

import torch
import uvloop

from pdsim.engine.kv_store import SlotKvStore
from pdsim.kv.codec import DEFAULT_CHUNK_BYTES
from pdsim.kv.send import KvSender
from pdsim.models.loading import load_model
from pdsim.models.spec import ModelSpec
from pdsim.rpc.server import parse_ready_line


def _start_decode_node(model: str, dtype: str, staging_tokens: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "apps", "--log-level", "WARNING", "decode", "--model", model, "--dtype", dtype,
         "--max-batch", "1", "--staging-tokens", str(staging_tokens), "--cpus", "1", "--no-metrics"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        ready = parse_ready_line(line)
        if ready is not None:
            return process, ready[0]
    raise RuntimeError("decode node did not start")


async def _time_pdsim(
    store: SlotKvStore, fingerprint: str, address: str, tokens: int, repeats: int, chunk: int
) -> list[float]:
    sender = KvSender(store, fingerprint, chunk, push_timeout=60)
    times = []
    for i in range(repeats + 1):
        delivery = await sender.push(f"bench-{i}", 0, tokens, [address], timeout=60)
        times.append(delivery.seconds)  # the pushed KV is left to its lease: staging holds them all
        await asyncio.sleep(0)
    await sender.close()
    return times[1:]


_RECEIVER = """
import socket, sys
size = int(sys.argv[1])
buffer = bytearray(size)
view = memoryview(buffer)
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    got = 0
    while got < size:
        n = conn.recv_into(view[got:])
        if n == 0:
            break
        got += n
    conn.sendall(b"k")
    conn.close()
"""


def _time_tcp(payload: bytes, repeats: int) -> list[float]:
    receiver = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-c", _RECEIVER, str(len(payload))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        times = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(payload)
                conn.recv(1)
            times.append(time.perf_counter() - started)
        return times[1:]
    finally:
        receiver.kill()
        receiver.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES)
    args = parser.parse_args()
    torch.set_num_threads(1)

    _, info = load_model(ModelSpec(args.model, dtype=args.dtype))
    store = SlotKvStore(info.layout, 1, args.tokens, "cpu")
    for keys, values in zip(store.keys, store.values, strict=True):
        keys.normal_()
        values.normal_()
    nbytes = args.tokens * info.layout.bytes_per_token
    node, address = _start_decode_node(args.model, args.dtype, (args.repeats + 1) * args.tokens)
    try:
        ours = statistics.median(
            uvloop.run(_time_pdsim(store, info.fingerprint, address, args.tokens, args.repeats, args.chunk_bytes))
        )
    finally:
        node.terminate()
        node.wait()
    raw = statistics.median(_time_tcp(torch.randn(nbytes // 4).numpy().tobytes(), args.repeats))
    print(f"KV of {args.tokens} tokens, model {info.name} {args.dtype}: {nbytes / 2**20:.1f} MiB")
    for name, seconds in (("pdsim PushKv", ours), ("raw loopback TCP", raw)):
        print(f"{name:<18} {seconds * 1e3:7.1f} ms  {nbytes / seconds / 1e9:5.2f} GB/s")
    print(f"pdsim / raw TCP bandwidth: {raw / ours:.2f}")


if __name__ == "__main__":
    main()
