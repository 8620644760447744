"""CNI 1.1 to the letter: which verbs a config version has, CNI_PATH where the spec
makes it optional, STATUS and GC reaching the IPAM plugin, IPAM's stderr passed on.

Debian's host-local speaks CNI 1.0.0 at most, so it has no STATUS or GC. The IPAM
plugin here (IPAM_11) hands ADD and DEL to host-local and records every STATUS and
GC it gets; its config says what STATUS answers.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cni_hwol.cni import errors

IPAM_11 = """#!/usr/bin/python3
import json, os, subprocess, sys

command = os.environ["CNI_COMMAND"]
stdin = sys.stdin.buffer.read()
if command == "VERSION":
    print(json.dumps({"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}))
    sys.exit(0)
conf = json.loads(stdin)
ipam = conf["ipam"]
with open(ipam["record"], "a") as record:
    names = ("cni.dev/valid-attachments", "cni.dev/attachments")  # the list under both names
    record.write(json.dumps({"command": command, "valid": [conf.get(name) for name in names]}) + "\\n")
print(f"ipam-11 says: {command} for {conf['name']}", file=sys.stderr)
if command == "STATUS" and ipam.get("notReady"):
    print(json.dumps({"cniVersion": conf["cniVersion"], "code": 50, "msg": ipam["notReady"]}))
    sys.exit(1)
if command in ("STATUS", "GC"):
    sys.exit(0)
version = conf["cniVersion"]
conf["cniVersion"] = "1.0.0"
done = subprocess.run(["/usr/lib/cni/host-local"], input=json.dumps(conf).encode(), capture_output=True)
out = done.stdout
if out.strip():
    out = json.dumps({**json.loads(out), "cniVersion": version}).encode()
sys.stdout.buffer.write(out)
sys.exit(done.returncode)
"""


def install_ipam_11(node) -> Path:
    path = node.bin_dir / "ipam-11"
    path.write_text(IPAM_11)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return node.workdir / "ipam-11.record"


def ipam_11_conf(node, record: Path, **extra) -> dict:
    ipam = {"type": "ipam-11", "subnet": node.subnet, "dataDir": str(node.ipam_dir), "record": str(record), **extra}
    return node.netconf(cni_version="1.1.0", ipam=ipam)


def recorded(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.mark.parametrize(
    ("verb", "version", "since"), [("CHECK", "0.3.1", "0.4.0"), ("GC", "1.0.0", "1.1.0"), ("STATUS", "1.0.0", "1.1.0")]
)
def test_a_verb_the_config_version_does_not_have_is_refused(node, verb, version, since):
    before = node.snapshot()
    pod = node.create_pod("p")
    conf = {**node.netconf(cni_version=version), "cni.dev/valid-attachments": []}
    status, body, stderr = node.exec_plugin(verb, conf, pod)
    assert (status, body["code"]) == (1, errors.INCOMPATIBLE_VERSION), (body, stderr)
    assert f"does not allow {verb}" in body["msg"] and since in body["msg"]
    assert body["cniVersion"] == version
    assert node.snapshot() == before


def test_cni_path_is_optional_where_the_spec_says(node):
    """ADD, CHECK, DEL and STATUS may come without CNI_PATH (GC may not): each does what it
    can without the IPAM plugin and says so when it needs it."""
    before = node.snapshot()
    pod = node.create_pod("p")
    vf = node.vf(0, 2)
    no_path = {"CNI_PATH": ""}
    l2_only = {k: v for k, v in node.netconf(cni_version="1.1.0").items() if k != "ipam"}
    # ADD and CHECK of an L2-only network need no plugin from CNI_PATH.
    status, result, stderr = node.exec_plugin("ADD", {**l2_only, "deviceID": vf.pci}, pod, env_overrides=no_path)
    assert status == 0, (result, stderr)
    status, body, stderr = node.exec_plugin("CHECK", {**l2_only, "prevResult": result}, pod, env_overrides=no_path)
    assert status == 0, (body, stderr)
    assert node.exec_plugin("DEL", l2_only, pod, env_overrides=no_path)[0] == 0
    # With IPAM, ADD names the plugin it cannot find; STATUS says not ready.
    with_ipam = node.netconf(cni_version="1.1.0")
    status, body, _ = node.exec_plugin("ADD", {**with_ipam, "deviceID": vf.pci}, pod, env_overrides=no_path)
    assert body["code"] == errors.INVALID_NETCONF and "host-local" in body["msg"] and "empty" in body["msg"]
    status, body, _ = node.exec_plugin("STATUS", with_ipam, env_overrides=no_path)
    assert body["code"] == errors.NOT_AVAILABLE and "host-local" in body["msg"]
    # CHECK of a network with IPAM asks the plugin too: without CNI_PATH it names the plugin.
    status, result, stderr = node.exec_plugin("ADD", {**with_ipam, "deviceID": vf.pci}, pod)
    assert status == 0, (result, stderr)
    attached = node.snapshot()
    status, body, _ = node.exec_plugin("CHECK", {**with_ipam, "prevResult": result}, pod, env_overrides=no_path)
    assert (status, body["code"]) == (1, errors.INVALID_NETCONF) and "host-local" in body["msg"], body
    assert node.exec_plugin("CHECK", {**with_ipam, "prevResult": result}, pod)[:2] == (0, None)
    assert node.snapshot() == attached
    assert node.exec_plugin("DEL", with_ipam, pod)[0] == 0
    assert node.exec_plugin("STATUS", l2_only, env_overrides=no_path)[0] == 0
    # A DEL of an attachment never made needs nothing; GC cannot do without CNI_PATH.
    assert node.exec_plugin("DEL", with_ipam, pod, env_overrides=no_path)[0] == 0
    status, body, _ = node.exec_plugin("GC", {**with_ipam, "cni.dev/valid-attachments": []}, env_overrides=no_path)
    assert body["code"] == errors.INVALID_ENVIRONMENT and "CNI_PATH" in body["msg"]
    assert node.snapshot() == before


def test_status_asks_the_ipam_plugin_and_passes_its_answer_on(node):
    record = install_ipam_11(node)
    status, body, stderr = node.exec_plugin("STATUS", ipam_11_conf(node, record))
    assert status == 0, (body, stderr)
    assert [r["command"] for r in recorded(record)] == ["STATUS"]
    status, body, stderr = node.exec_plugin("STATUS", ipam_11_conf(node, record, notReady="pool exhausted"))
    assert (status, body["code"]) == (1, errors.NOT_AVAILABLE)
    assert "pool exhausted" in body["msg"]
    assert [r["command"] for r in recorded(record)] == ["STATUS", "STATUS"]


def test_ipam_stderr_reaches_the_callers_stderr(node):
    record = install_ipam_11(node)
    status, body, stderr = node.exec_plugin("STATUS", ipam_11_conf(node, record))
    assert status == 0, (body, stderr)
    assert "ipam-11 says: STATUS for hwol" in stderr


def test_gc_goes_on_past_an_ovsdb_error_and_always_forwards_gc_to_ipam(node):
    before = node.snapshot()
    record = install_ipam_11(node)
    conf = ipam_11_conf(node, record)
    pod, vf = node.create_pod("p"), node.vf(1, 2)
    status, result, stderr = node.exec_plugin("ADD", {**conf, "deviceID": vf.pci}, pod)
    assert status == 0, (result, stderr)
    valid: list[dict] = []
    node.ovs.stop_database()
    try:
        status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": valid})
    finally:
        node.ovs.start_database()
    assert (status, body["code"]) == (1, errors.TRY_AGAIN_LATER), (body, stderr)
    assert "orphan OVS ports" in body["details"]
    assert recorded(record)[-1] == {"command": "GC", "valid": [valid, valid]}
    # OVSDB back: the next GC removes what the first could not, and forwards GC again.
    status, body, stderr = node.exec_plugin("GC", {**conf, "cni.dev/valid-attachments": valid})
    assert status == 0, (body, stderr)
    # The lease went back through IPAM DEL (in the first GC or the second: whichever could tear down).
    commands = [r["command"] for r in recorded(record)]
    assert commands[0] == "ADD" and commands[-1] == "GC" and sorted(commands[1:]) == ["DEL", "GC", "GC"]
    assert node.snapshot() == before
