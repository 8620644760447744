"""Bad port options (tests/corpus/bad_port_options.json: vlan, trunk, ofport_request, bridges)
and bad VF settings (tests/corpus/bad_vf_settings.json: spoofchk, trust, link_state, min_tx_rate,
max_tx_rate, runtimeConfig.bandwidth, an MTU above the uplink's) through the real executable on
the simulated node: code 7 (103 for a key the simulated PF, a veth without VF operations, or its
missing devlink cannot take), a message naming the key, exit 1, no traceback, node unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_port_options.json").read_text())
VF_SETTINGS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_vf_settings.json").read_text())


@pytest.fixture(scope="module")
def options_node(shared_node):
    shared_node.pod = shared_node.create_pod("options")
    shared_node.baseline = shared_node.snapshot()
    return shared_node


@pytest.mark.parametrize("case", CORPUS, ids=[c["case"] for c in CORPUS])
def test_bad_port_option(options_node, case):
    assert_refused_and_unchanged(options_node, case)


@pytest.mark.parametrize("case", VF_SETTINGS, ids=[c["case"] for c in VF_SETTINGS])
def test_bad_vf_setting(options_node, case):
    assert_refused_and_unchanged(options_node, case)


def assert_refused_and_unchanged(node, case: dict) -> None:
    """ADD with the case's keys: its code, a message naming the key, exit 1, no traceback, node as before."""
    conf = {**node.netconf(), "deviceID": node.vf(0, 0).pci, **case["conf"]}
    status, body, stderr = node.exec_plugin("ADD", conf, node.pod)
    assert status == 1, (body, stderr)
    assert body["code"] == case["code"], body
    assert case["names"] in body["msg"], body
    assert "Traceback" not in json.dumps(body) and "Traceback" not in stderr
    assert node.snapshot() == node.baseline
