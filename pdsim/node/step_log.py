"""A node's record of its steps as it serves (`--record-steps DIR`): each step's shape and seconds, one JSON line
each, in `DIR/<role>-<port>.jsonl`. `pdsim calibrate --from-steps` fits a profile to them: the steps this device
takes while it serves, with whatever else shares it, rather than alone."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO

from pdsim.engine.step_stats import StepStats


class StepLog:
    def __init__(self, directory: str, role: str, address: str) -> None:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{role}-{address.rsplit(':', 1)[-1]}.jsonl"
        self._file: IO[str] | None = self.path.open("a")
        self._lock = threading.Lock()  # written on the engine thread, closed on the event loop's

    def write(self, stats: StepStats) -> None:
        segments = [(s.new, s.cached) for s in stats.step.segments()] if stats.step is not None else []
        line = json.dumps({"phase": stats.phase.value, "seconds": stats.seconds, "segments": segments})
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
