"""The image and old-glibc tiers: what they need, and the roots and trees they share.

Each test skips with the reason when a tool is missing, and fails instead under CI=true."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.simnode.builds import BUILD_DIR, REPO


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        reason = f"missing {', '.join(missing)}: run .ci/setup --image"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def built_tree() -> Path:
    """The PyInstaller tree (packaging/build.sh): CNI_HWOL_BINARY's directory, else dist/cni-hwol."""
    binary = os.environ.get("CNI_HWOL_BINARY")
    tree = Path(binary).resolve().parent if binary else REPO / "dist" / "cni-hwol"
    if not (tree / "cni-hwol-py").exists():
        reason = f"no PyInstaller tree at {tree}: run packaging/build.sh (or set CNI_HWOL_BINARY)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return tree


def debian_root(suite: str, packages: list[str]) -> Path:
    """A minimal Debian root of suite with packages (mmdebstrap), made once per build directory."""
    digest = hashlib.sha256(" ".join([suite, *packages]).encode()).hexdigest()[:12]
    root = BUILD_DIR / f"root-{suite}-{digest}"
    if root.exists():
        return root
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(root.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    include = [f"--include={','.join(packages)}"] if packages else []
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", *include, suite, str(tmp)], check=True)
    os.replace(tmp, root)
    return root
