"""Bad VF settings (tests/corpus/bad_vf_settings.json: spoofchk, trust, link_state, min_tx_rate,
max_tx_rate, runtimeConfig.bandwidth, an MTU above the uplink's)
through the real executable on the simulated node: code 7 (103 for a key the
simulated PF, a veth without VF operations, or its missing devlink cannot take), a message naming the key, exit 1,
no traceback, and nothing changed on the node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_vf_settings.json").read_text())


@pytest.fixture(scope="module")
def vfset_node(shared_node):
    shared_node.pod = shared_node.create_pod("vfset")
    shared_node.baseline = shared_node.snapshot()
    return shared_node


@pytest.mark.parametrize("case", CORPUS, ids=[c["case"] for c in CORPUS])
def test_bad_vf_setting(vfset_node, case):
    node = vfset_node
    conf = {**node.netconf(), "deviceID": node.vf(0, 0).pci, **case["conf"]}
    status, body, stderr = node.exec_plugin("ADD", conf, node.pod)
    assert status == 1, (body, stderr)
    assert body["code"] == case["code"], body
    assert case["names"] in body["msg"], body
    assert "Traceback" not in json.dumps(body) and "Traceback" not in stderr
    assert node.snapshot() == node.baseline
