"""The committed protobuf stubs must match proto/ (run `make proto` after editing it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ["pdsim_pb2.py", "pdsim_pb2.pyi", "pdsim_pb2_grpc.py"]


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(ROOT / "proto/pdsim/rpc/pdsim.proto")],
        check=True,
    )  # fmt: skip
    for name in GENERATED:
        fresh = (tmp_path / "pdsim/rpc" / name).read_text()
        committed = (ROOT / "pdsim/rpc" / name).read_text()
        assert fresh == committed, f"pdsim/rpc/{name} is stale: run `make proto`"
