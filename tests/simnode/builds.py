"""The test suite's own executables, each built once per version of its sources:
the libcni client (tests/cnitool/main.go) and cni-hwol's exec'd front
(cni_hwol/executor/shim.c, through packaging/build-shim.sh as the release build)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CNITOOL_SOURCE = REPO / "tests" / "cnitool" / "main.go"
SHIM_SOURCES = (REPO / "cni_hwol" / "executor" / "shim.c", REPO / "cni_hwol" / "__init__.py")
BUILD_DIR = Path(os.environ.get("CNI_HWOL_BUILD_DIR", "/tmp/cni-hwol-build"))


def _built_once(name: str, sources: tuple[Path, ...], build: Callable[[Path], None]) -> Path:
    digest = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()[:12]
    binary = BUILD_DIR / f"{name}-{digest}"
    if binary.exists():
        return binary
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(binary.name + f".{os.getpid()}.tmp")
    build(tmp)
    os.replace(tmp, binary)
    return binary


def cnitool_binary() -> Path:
    def build(out: Path) -> None:
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": "/usr/share/gocode",
            "GOCACHE": str(BUILD_DIR / "gocache"),
            "GOFLAGS": "",
        }
        subprocess.run(
            ["go", "build", "-o", str(out), "."], cwd=CNITOOL_SOURCE.parent, env=env, check=True, capture_output=True
        )

    return _built_once("cnitool", (CNITOOL_SOURCE,), build)


def shim_binary() -> Path:
    def build(out: Path) -> None:
        subprocess.run(["bash", str(REPO / "packaging" / "build-shim.sh"), str(out)], check=True, capture_output=True)

    return _built_once("cni-hwol-shim", SHIM_SOURCES, build)
