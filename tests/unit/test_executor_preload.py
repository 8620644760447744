"""The executor's preload covers every import the plugin makes inside a function.

A fork of the executor runs in its caller's mount namespace, where the executor's
own files (the image's, in the DaemonSet) are not there to import from: a module
first imported in the fork fails with ModuleNotFoundError (as CHECK's tc codec did).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Never run in a fork: the operator tools, the installer and the executor itself run from
# their own files (main imports them for their own subcommands, not for a CNI verb).
NOT_IN_FORKS = ("cni_hwol/tools/", "cni_hwol/install.py", "cni_hwol/executor/")
NOT_IN_FORKS_MODULES = ("cni_hwol.tools", "cni_hwol.install", "cni_hwol.executor")


def function_level_imports() -> dict[str, str]:
    """module -> where it is imported inside a function, for the plugin's code forks run."""
    found = {}
    for path in sorted((REPO / "cni_hwol").rglob("*.py")):
        where = str(path.relative_to(REPO))
        if where.startswith(NOT_IN_FORKS):
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.setdefault(node.module, f"{where}:{node.lineno}")
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        found.setdefault(alias.name, f"{where}:{node.lineno}")
    return {module: where for module, where in found.items() if not module.startswith(NOT_IN_FORKS_MODULES)}


def test_every_import_a_fork_can_make_is_preloaded():
    imports = function_level_imports()
    assert "pyroute2.netlink.rtnl.tcmsg" in imports  # the scan sees the lazy codecs
    probe = "import json, sys; from cni_hwol.executor.server import preload; preload()"
    probe += "; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    missing = {module: where for module, where in imports.items() if module not in loaded}
    assert missing == {}
