"""Prometheus service discovery files, one per running launcher, that outlive no launcher.

A launcher writes `pdsim-<mode>-<pid>-<start>-<nonce>.json` (its pid, its process start time in clock ticks since
boot, and a nonce for several launchers in one process) into the targets directory and removes it on stop. A
launcher killed with -9 cannot remove its own, so the name says who owns it: the next launcher and `pdsim observe`
(while it runs) remove every file whose owner is gone. The start time tells a dead launcher from an unrelated
process that reuses its pid, with no lock file and no daemon. Without /proc (not Linux) the start time is 0 and a
live pid is taken as the owner.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

# The start time is absent from the files of earlier versions (`pdsim-<mode>-<pid>-<nonce>.json`).
_NAME = re.compile(r"^pdsim-[a-z]+-(?P<pid>\d+)-(?:(?P<start>\d+)-)?[0-9a-f]{8}\.json(?:\.tmp)?$")


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (0 without /proc); None when it is not running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc here: fall back to whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    if fields[0] == "Z":  # exited, not yet reaped: gone all the same
        return None
    return int(fields[19])  # field 22 of stat; fields here start at field 3


def _owner_alive(pid: int, start: int) -> bool:
    current = process_start(pid)
    return current is not None and (start == 0 or current == 0 or current == start)


def remove_stale(directory: Path) -> list[Path]:
    """Remove the targets files of launchers that are gone; returns them."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match is None or _owner_alive(int(match["pid"]), int(match["start"] or 0)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
        log.info("removed %s: the launcher that wrote it is gone", path)
    return removed


def write_targets(directory: Path, mode: str, groups: list[dict[str, object]]) -> Path:
    """Write (or replace whole, since Prometheus may read at any time) this launcher's file; stale ones go first."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale(directory)
    pid = os.getpid()
    path = directory / f"pdsim-{mode}-{pid}-{process_start(pid) or 0}-{uuid.uuid4().hex[:8]}.json"
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(groups, indent=2))
    partial.replace(path)
    return path
