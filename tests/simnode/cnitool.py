"""Build the test suite's libcni client (tests/cnitool/main.go) once per source version."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "cnitool" / "main.go"
BUILD_DIR = Path(os.environ.get("CNI_HWOL_BUILD_DIR", "/tmp/cni-hwol-build"))


def cnitool_binary() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = BUILD_DIR / f"cnitool-{digest}"
    if binary.exists():
        return binary
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(BUILD_DIR / "gocache"),
        "GOFLAGS": "",
    }
    tmp = binary.with_name(binary.name + f".{os.getpid()}.tmp")
    subprocess.run(["go", "build", "-o", str(tmp), "."], cwd=SOURCE.parent, env=env, check=True, capture_output=True)
    os.replace(tmp, binary)
    return binary
