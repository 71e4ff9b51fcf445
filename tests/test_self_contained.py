"""pdsim stands on its own: a user's clone has nothing beside it, so no tracked file outside tests/ may read or name
a `shared/` folder next to the checkout (traces and metric definitions ship inside the project)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_REFERENCE = re.compile(r"\.\./shared|shared/(traces|METRICS|DESIGN|STYLE|seeds)")


def test_no_tracked_file_refers_to_a_shared_folder_beside_the_checkout() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        if name.startswith("tests/"):
            continue
        try:
            text = (ROOT / name).read_text()
        except (UnicodeDecodeError, FileNotFoundError):  # binary data; a file deleted but not yet committed
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE_REFERENCE.search(line)]
    assert not offenders, f"these refer to a shared/ folder a user's clone does not have: {offenders}"
