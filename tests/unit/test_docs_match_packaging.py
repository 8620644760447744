"""The operator docs point at files that exist and describe the DaemonSet as shipped."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DAEMONSET = ROOT / "packaging/daemonset.yaml"
OPERATORS = ROOT / "docs/operators.md"


def test_every_docs_path_named_in_packaging_exists():
    for path in sorted((ROOT / "packaging").rglob("*")):
        if path.is_file():
            for named in re.findall(r"\bdocs/[\w./-]+\.md", path.read_text(errors="replace")):
                assert (ROOT / named).is_file(), f"{path.relative_to(ROOT)} points to {named}"


def test_operators_md_names_every_hostpath_and_container_of_the_daemonset():
    (daemonset,) = (d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d["kind"] == "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    text = OPERATORS.read_text()
    host_paths = [v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v]
    assert host_paths and all(f"`{p}`" in text for p in host_paths), host_paths
    for container in spec["containers"]:
        assert f"`{container['name']}`" in text
    assert "pause container" not in text
