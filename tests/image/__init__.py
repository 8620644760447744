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
        reason = f"missing {', '.join(missing)}: run .ci/setup"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def built_tree() -> Path:
    """The PyInstaller tree: CNI_HWOL_BINARY's directory (.ci/run builds it with packaging/build.sh),
    else a build of this tree's sources, made once per version of them (about a minute)."""
    binary = os.environ.get("CNI_HWOL_BINARY")
    if binary:
        return Path(binary).resolve().parent
    require("pyinstaller", "cc")
    sources = sorted(path for base in ("cni_hwol", "packaging") for path in (REPO / base).rglob("*") if path.is_file())
    digest = hashlib.sha256()
    for path in sources:
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    out = BUILD_DIR / f"tree-{digest.hexdigest()[:12]}"
    if not (out / "cni-hwol" / "cni-hwol").exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [
                "pyinstaller",
                "--noconfirm",
                "--log-level",
                "WARN",
                "--distpath",
                str(out),
                "--workpath",
                str(out / "work"),
                str(REPO / "packaging" / "cni-hwol.spec"),
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["bash", str(REPO / "packaging" / "build-shim.sh"), str(out / "cni-hwol" / "cni-hwol")],
            check=True,
            capture_output=True,
        )
    return out / "cni-hwol"


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
