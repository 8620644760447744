"""PyInstaller entry point of the cni-hwol executable."""

import os

# PyInstaller's bootloader points LD_LIBRARY_PATH at _internal, which holds the build's glibc:
# a node binary the plugin execs (IPAM plugins, tc) must load the node's own, so give them
# back the caller's library path.
_caller_library_path = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
if _caller_library_path is None:
    os.environ.pop("LD_LIBRARY_PATH", None)
else:
    os.environ["LD_LIBRARY_PATH"] = _caller_library_path

from cni_hwol.main import main  # noqa: E402

raise SystemExit(main())
