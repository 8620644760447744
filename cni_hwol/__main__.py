from cni_hwol.main import main

raise SystemExit(main())
