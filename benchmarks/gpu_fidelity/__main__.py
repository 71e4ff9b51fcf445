import sys

from benchmarks.gpu_fidelity.main import main

sys.exit(main())
