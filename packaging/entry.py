"""PyInstaller entry point of the cni-hwol executable."""

from cni_hwol.main import main

raise SystemExit(main())
