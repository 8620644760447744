"""The device-info file (runtimeConfig.CNIDeviceInfoFile, the NPWG Device Information spec) on the
simulated node, through the libcni client with the capability, as Multus passes it. The node's
device-info directory is a temp dir (`deviceInfoDir`); "as before" is the node snapshot plus every
file below that directory and the one outside it, byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CORPUS = json.loads((Path(__file__).parent.parent / "corpus" / "bad_device_info.json").read_text())
KEY = "runtimeConfig.CNIDeviceInfoFile"


def devinfo_node(node) -> Path:
    """The node's device-info directory with cni/ and dp/ (as Multus and the device plugin make them),
    and a network whose cni-hwol asks for the capability."""
    root = node.workdir / "devinfo"
    (root / "cni").mkdir(parents=True)
    (root / "dp").mkdir()
    node.write_conflist(
        "devinfo", chained=False, deviceInfoDir=str(root), capabilities={"deviceID": True, "CNIDeviceInfoFile": True}
    )
    return root


def files_below(*dirs: Path) -> dict[str, str]:
    """Every file and link below the directories: its text, or where the link points."""
    found = {}
    for top in dirs:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                found[str(path)] = (
                    f"-> {os.readlink(path)}" if path.is_symlink() else path.is_file() and path.read_text()
                )
    return found


def test_add_adds_the_representor_keeping_multus_copy_and_del_puts_the_file_back(node):
    root = devinfo_node(node)
    pod, vf = node.create_pod("devinfo"), node.vf(0, 1)
    cni_file = root / "cni" / f"devinfo-{pod.container_id}-net1-device.json"
    # What Multus copied from the device plugin's file (sriov-network-device-plugin's shape).
    multus_copy = json.dumps({"type": "pci", "version": "1.0.0", "pci": {"pci-address": vf.pci, "rdma-device": ""}})
    cni_file.write_text(multus_copy)
    before = node.snapshot()

    caps = {"CNIDeviceInfoFile": str(cni_file)}
    node.cnitool_run("add", pod, vf.pci, network="devinfo", cap_args=caps)
    assert json.loads(cni_file.read_text()) == {
        "type": "pci",
        "version": "1.0.0",
        "pci": {
            "pci-address": vf.pci,
            "pf-pci-address": node.pf_address(0),
            "rdma-device": "",
            "representor-device": vf.rep_name,
        },
    }
    assert sorted(os.listdir(root / "cni")) == [cni_file.name]  # the temp file renamed, none left
    node.cnitool_run("check", pod, vf.pci, network="devinfo", cap_args=caps)

    node.cnitool_run("del", pod, vf.pci, network="devinfo", cap_args=caps)
    assert cni_file.read_text() == multus_copy
    node.cnitool_run("del", pod, vf.pci, network="devinfo", cap_args=caps)  # idempotent
    assert node.snapshot() == before
    assert cni_file.read_text() == multus_copy


def test_without_a_cni_file_the_device_plugins_file_is_the_base_and_del_removes_what_add_created(node):
    root = devinfo_node(node)
    pod, vf = node.create_pod("devdp"), node.vf(1, 2)
    dp_text = json.dumps({"type": "pci", "version": "1.1.0", "pci": {"pci-address": vf.pci, "vhost-net": "/dev/v"}})
    (root / "dp" / f"nvidia.com-mlnx_sriov-{vf.pci}-device.json").write_text(dp_text)
    (root / "dp" / "nvidia.com-mlnx_sriov-0000:09:00.1-device.json").write_text("{}")  # another VF's
    before, files = node.snapshot(), files_below(root)
    cni_file = root / "cni" / "devdp.json"

    node.cnitool_run("add", pod, vf.pci, network="devinfo", cap_args={"CNIDeviceInfoFile": str(cni_file)})
    assert json.loads(cni_file.read_text()) == {
        "type": "pci",
        "version": "1.1.0",
        "pci": {
            "pci-address": vf.pci,
            "pf-pci-address": node.pf_address(1),
            "vhost-net": "/dev/v",
            "representor-device": vf.rep_name,
        },
    }
    assert oct(cni_file.stat().st_mode & 0o777) == "0o644"
    node.cnitool_run("del", pod, vf.pci, network="devinfo", cap_args={"CNIDeviceInfoFile": str(cni_file)})
    assert (node.snapshot(), files_below(root)) == (before, files)


def test_a_missing_directory_is_a_warning_and_add_goes_on(node):
    root = devinfo_node(node)
    pod, vf = node.create_pod("devnodir"), node.vf(0, 2)
    missing = root / "gone" / "f.json"
    before, files = node.snapshot(), files_below(root)
    result = json.loads(
        node.cnitool_run("add", pod, vf.pci, network="devinfo", cap_args={"CNIDeviceInfoFile": str(missing)}).stdout
    )
    assert result["interfaces"][0]["name"] == vf.rep_name
    assert files_below(root) == files
    assert f"directory {root / 'gone'} does not exist" in node.log_file.read_text()
    node.cnitool_run("del", pod, vf.pci, network="devinfo", cap_args={"CNIDeviceInfoFile": str(missing)})
    assert (node.snapshot(), files_below(root)) == (before, files)


@pytest.mark.parametrize("case", CORPUS, ids=[c["case"].replace(" ", "-") for c in CORPUS])
def test_bad_device_info_file(node, case):
    """Code 7 naming the key, exit 1, no traceback; node, device-info directory and the file
    outside it as before: nothing written, nothing created, nothing followed."""
    root = devinfo_node(node)
    outside = node.workdir / "outside"
    outside.mkdir()
    (outside / "target.json").write_text("not yours")
    (root / "cni" / "link").symlink_to(outside, target_is_directory=True)
    (root / "cni" / "file-link.json").symlink_to(outside / "target.json")
    (root / "dirlink").symlink_to(outside, target_is_directory=True)
    pod = node.create_pod("devbad")
    before, files = node.snapshot(), files_below(root, outside)
    path = case["path"].replace("{root}", str(root)).replace("{outside}", str(outside))
    conf = {**node.netconf(deviceInfoDir=str(root)), "deviceID": node.vf(0, 3).pci}
    conf["runtimeConfig"] = {"CNIDeviceInfoFile": path}
    status, body, stderr = node.exec_plugin("ADD", conf, pod)
    assert status == 1, (body, stderr)
    assert body["code"] == 7 and KEY in body["msg"], body
    assert "Traceback" not in json.dumps(body) and "Traceback" not in stderr
    assert (node.snapshot(), files_below(root, outside)) == (before, files)


def test_a_failed_add_puts_the_file_back(node):
    """ADD fails after writing the file (the bridge does not exist: code 101): its undo restores Multus' bytes."""
    root = devinfo_node(node)
    node.write_conflist(
        "nobridge",
        chained=False,
        bridge="br-none",
        deviceInfoDir=str(root),
        capabilities={"deviceID": True, "CNIDeviceInfoFile": True},
    )
    pod, vf = node.create_pod("devfail"), node.vf(0, 3)
    cni_file = root / "cni" / "devfail.json"
    cni_file.write_text(json.dumps({"type": "pci", "version": "1.0.0", "pci": {"pci-address": vf.pci}}))
    before, files = node.snapshot(), files_below(root)
    done = node.cnitool_run(
        "add", pod, vf.pci, network="nobridge", cap_args={"CNIDeviceInfoFile": str(cni_file)}, check=False
    )
    assert done.returncode != 0 and "br-none does not exist" in done.stderr.decode()
    assert (node.snapshot(), files_below(root)) == (before, files)
