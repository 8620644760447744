"""Import pyroute2's modules without its package __init__.

pyroute2/__init__.py imports every module the library has (NDB, IPDB,
conntrack, nftables, ...): about 120 ms of CPU on every plugin exec. The plugin
needs only the RTNL and devlink sockets, so we register a bare package object
that knows where the submodules live and import those alone.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def load_pyroute2() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed")
    package = types.ModuleType("pyroute2")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__loader__ = spec.loader
    sys.modules["pyroute2"] = package
