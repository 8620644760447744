"""The device-info file (NPWG Device Information spec): where a netconf may have ADD write
(cni_hwol/cni/device_info.py), the merge that keeps the device plugin's keys, and the
no-follow, atomic file operations (cni_hwol/linux/device_info_file.py) on temp dirs."""

from __future__ import annotations

import json
import os

import pytest

from cni_hwol.cni.device_info import device_info_target, with_representor
from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import parse_netconf
from cni_hwol.cni.policy import apply_node_policy, parse_node_config
from cni_hwol.linux.device_info_file import UnsafePath, read_below, remove_below, write_below

ROOT = "/var/run/k8s.cni.cncf.io/devinfo"


def conf(path, **keys):
    body = {"cniVersion": "1.0.0", "name": "net", "type": "cni-hwol", "runtimeConfig": {"CNIDeviceInfoFile": path}}
    return parse_netconf(json.dumps({**body, **keys}).encode())


def test_a_path_below_the_directory_is_split_into_components():
    target = device_info_target(conf(f"{ROOT}/cni/net-abc-net1-device.json"))
    assert (target.root, target.parts) == (ROOT, ("cni", "net-abc-net1-device.json"))
    assert device_info_target(conf("")) is None
    assert device_info_target(parse_netconf(b'{"cniVersion": "1.0.0", "name": "n"}')) is None


@pytest.mark.parametrize(
    "path",
    [
        "/etc/shadow",
        f"{ROOT}",
        f"{ROOT}/",
        f"{ROOT}/../devinfo/cni/x.json",
        f"{ROOT}/cni/../../x.json",
        f"{ROOT}/./cni/x.json",
        f"{ROOT}//cni/x.json",
        f"{ROOT}-other/x.json",
        "cni/x.json",
        f"{ROOT}/cni/x\0.json",
    ],
)
def test_a_path_not_strictly_below_the_directory_is_refused_naming_the_key(path):
    with pytest.raises(CNIError) as refused:
        device_info_target(conf(path))
    assert refused.value.code == INVALID_NETCONF
    assert "runtimeConfig.CNIDeviceInfoFile" in refused.value.msg


def test_a_non_string_path_is_refused():
    with pytest.raises(CNIError, match="CNIDeviceInfoFile must be a string"):
        device_info_target(conf(["/x"]))


def test_the_node_file_sets_the_directory_and_a_netconf_may_not_move_it():
    node = parse_node_config(json.dumps({"settings": {"deviceInfoDir": "/run/devinfo"}}).encode(), "/etc/node.json")
    applied = apply_node_policy(conf("/run/devinfo/cni/x.json"), node)
    assert device_info_target(applied).root == "/run/devinfo"
    with pytest.raises(CNIError, match="runtimeConfig.CNIDeviceInfoFile"):
        device_info_target(apply_node_policy(conf(f"{ROOT}/cni/x.json"), node))
    with pytest.raises(CNIError, match="deviceInfoDir '/tmp' is not allowed"):
        apply_node_policy(conf("/tmp/x.json", deviceInfoDir="/tmp"), node)


def test_the_representor_is_added_and_every_key_of_the_device_plugin_kept():
    dp = {"type": "pci", "version": "1.0.0", "pci": {"pci-address": "0000:04:00.1", "rdma-device": "mlx5_3"}, "x": 1}
    assert with_representor(dp, "0000:04:00.1", "0000:03:00.0", "eth0rep1") == {
        "type": "pci",
        "version": "1.0.0",
        "pci": {
            "pci-address": "0000:04:00.1",
            "pf-pci-address": "0000:03:00.0",
            "rdma-device": "mlx5_3",
            "representor-device": "eth0rep1",
        },
        "x": 1,
    }
    assert with_representor(None, "0000:04:00.1", "0000:03:00.0", "r") == {
        "type": "pci",
        "version": "1.1.0",
        "pci": {"pci-address": "0000:04:00.1", "pf-pci-address": "0000:03:00.0", "representor-device": "r"},
    }


@pytest.mark.parametrize(
    "other", [{"type": "vdpa", "vdpa": {}}, {"type": "pci", "pci": {"pci-address": "0000:09:00.1"}}, {"pci": []}]
)
def test_information_about_another_device_is_left_alone(other):
    assert with_representor(other, "0000:04:00.1", "0000:03:00.0", "r") is None


def test_write_is_atomic_and_remove_takes_the_file(tmp_path):
    (tmp_path / "cni").mkdir()
    write_below(str(tmp_path), ("cni", "f.json"), "one")
    write_below(str(tmp_path), ("cni", "f.json"), "two")
    assert os.listdir(tmp_path / "cni") == ["f.json"]  # no temp file left
    assert read_below(str(tmp_path), ("cni", "f.json")) == "two"
    assert oct((tmp_path / "cni" / "f.json").stat().st_mode & 0o777) == "0o644"
    remove_below(str(tmp_path), ("cni", "f.json"))
    remove_below(str(tmp_path), ("cni", "f.json"))  # idempotent
    assert os.listdir(tmp_path / "cni") == []


def test_a_symlink_at_any_component_below_the_root_is_not_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "f.json").write_text("secret")
    (root / "cni").symlink_to(outside)
    (root / "real").mkdir()
    (root / "real" / "f.json").symlink_to(outside / "f.json")
    for parts in (("cni", "f.json"), ("real", "f.json")):
        for operation in (read_below, remove_below, lambda r, p: write_below(r, p, "x")):
            with pytest.raises(UnsafePath):
                operation(str(root), parts)
    assert (outside / "f.json").read_text() == "secret"
    assert os.listdir(root / "real") == ["f.json"] and os.listdir(outside) == ["f.json"]


def test_the_trusted_root_itself_may_be_reached_through_a_link(tmp_path):
    """/var/run is a symlink to /run on Debian: only the tenant's components are opened no-follow."""
    (tmp_path / "real" / "cni").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    write_below(str(tmp_path / "link"), ("cni", "f.json"), "x")
    assert (tmp_path / "real" / "cni" / "f.json").read_text() == "x"
