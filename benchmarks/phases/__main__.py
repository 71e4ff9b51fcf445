from __future__ import annotations

import sys

from benchmarks.phases.main import main

sys.exit(main())
