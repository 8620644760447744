"""The bad-input corpus (tests/corpus/bad_input.json), run through the real
executable on the simulated node with ADD, DEL, CHECK and GC: each case gets its
CNI error code and a message naming the reason (so it cannot pass for another
one), exit 1, no traceback, and changes nothing on the node.

A case's "code" and "msg" (a fragment of the error's msg or details) are ADD's;
"verbs" gives another verb's only where it differs. Code 0 means the verb
succeeds: DEL stays idempotent on garbage it can parse, GC and CHECK ignore what
they do not read (CHECK then finds no attachment of ours: code 3).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_input.json").read_text())
CORPUS_SIZE = 103
VERBS = ("ADD", "DEL", "CHECK", "GC")
# What a runtime always sends along: the result of ADD for CHECK, the attachments to keep for GC.
PREV_RESULT = {"cniVersion": "1.1.0", "interfaces": [], "ips": []}
VERB_KEYS = {"CHECK": {"prevResult": PREV_RESULT}, "GC": {"cni.dev/valid-attachments": []}}


@pytest.fixture(scope="module")
def corpus_node(shared_node, tmp_path_factory):
    node = shared_node
    outside = tmp_path_factory.mktemp("outside-sysfs")
    # 0000:0a:00.0's bus/pci link leaves sysfsRoot; 0000:0b:00.0 is inside, its physfn is not.
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


def stdin_of(case: dict, verb: str, node) -> bytes:
    if "raw" in case:
        return b" " * (2 << 20) if case["raw"] == "HUGE" else case["raw"].encode()
    conf = {
        **node.netconf(cni_version="1.1.0"),
        "deviceID": node.vf(0, 0).pci,
        **VERB_KEYS.get(verb, {}),
        **expand(case.get("conf", {}), node),
    }
    for key in case.get("unset", []):
        conf.pop(key, None)
    return json.dumps(conf).encode()


def expected(case: dict, verb: str) -> tuple[int, str | None]:
    other = case.get("verbs", {}).get(verb)
    if other is None:
        return case["code"], case["msg"]
    return other["code"], other.get("msg", case["msg"] if other["code"] == case["code"] else None)


@pytest.mark.parametrize("verb", VERBS)
def case_id(case: dict) -> str:
    """The case name as a test id without spaces (tests/mutants names tests by id)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", case["case"]).strip("-")


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("case", CORPUS, ids=[case_id(c) for c in CORPUS])
def test_bad_input(corpus_node, case, verb):
    node = corpus_node
    code, fragment = expected(case, verb)
    status, body, stderr = node.exec_plugin(verb, stdin_of(case, verb, node), node.pod, env_overrides=case.get("env"))
    assert "Traceback" not in json.dumps(body) and "Traceback" not in stderr
    if code == 0:
        assert (status, body) == (0, None), (body, stderr)
    else:
        assert status == 1, (body, stderr)
        assert body["code"] == code, body
        assert fragment in f"{body['msg']} | {body.get('details', '')}", body
    assert node.snapshot() == node.baseline


def test_the_corpus_has_every_case_once_with_its_reason():
    assert len(CORPUS) == CORPUS_SIZE
    assert len({case_id(c) for c in CORPUS}) == CORPUS_SIZE
    for case in CORPUS:
        assert isinstance(case["msg"], str) and len(case["msg"]) >= 8, case
        assert set(case.get("verbs", {})) <= set(VERBS) - {"ADD"}, case
        for verb, other in case.get("verbs", {}).items():
            assert other["code"] != case["code"] or "msg" in other, (case["case"], verb, "same as ADD: leave it out")
