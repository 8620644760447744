"""The bad-input corpus (tests/corpus/bad_input.json), run through the real
executable on the simulated node: each case gets its CNI error code, a message,
a non-zero exit, no traceback, and changes nothing on the node."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_input.json").read_text())


@pytest.fixture(scope="module")
def corpus_node(shared_node, tmp_path_factory):
    node = shared_node
    outside = tmp_path_factory.mktemp("outside-sysfs")
    (outside / "0000:0a:00.0").mkdir()
    os.symlink(outside / "0000:0a:00.0", node.sysfs_root / "bus/pci/devices/0000:0a:00.0")
    inside = node.sysfs_root / "devices/pci0000:00/0000:0b:00.0"
    (inside / "net").mkdir(parents=True)
    os.symlink(outside, inside / "physfn")
    os.symlink("../../../devices/pci0000:00/0000:0b:00.0", node.sysfs_root / "bus/pci/devices/0000:0b:00.0")
    node.pod = node.create_pod("corpus")
    node.baseline = node.snapshot()
    return node


def expand(value, node):
    if isinstance(value, str):
        return value.replace("{pf}", node.pf_address(0))
    if isinstance(value, dict):
        return {k: expand(v, node) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", CORPUS, ids=[c["case"] for c in CORPUS])
def test_bad_input(corpus_node, case):
    node = corpus_node
    conf = {**node.netconf(), "deviceID": node.vf(0, 0).pci, **expand(case.get("conf", {}), node)}
    for key in case.get("unset", []):
        conf.pop(key, None)
    if "raw" in case:
        stdin = b" " * (2 << 20) if case["raw"] == "HUGE" else case["raw"].encode()
    else:
        stdin = json.dumps(conf).encode()
    status, body, stderr = node.exec_plugin("ADD", stdin, node.pod, env_overrides=case.get("env"))
    assert status == 1, (body, stderr)
    assert body["code"] == case["code"], body
    assert isinstance(body["msg"], str) and len(body["msg"]) > 10, body
    assert "Traceback" not in json.dumps(body) and "Traceback" not in stderr
    assert node.snapshot() == node.baseline


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 60
