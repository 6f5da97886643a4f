from data_seed.cli import main

raise SystemExit(main())
