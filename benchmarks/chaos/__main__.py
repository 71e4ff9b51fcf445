from benchmarks.chaos.main import main

raise SystemExit(main())
