"""Every YAML and JSON file in conf/ and packaging/ parses; Kubernetes manifests
validate against the Kubernetes OpenAPI schemas (offline, kubernetes-validate);
the CNI configs they carry are accepted by the plugin's own parser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cni_hwol.cni.netconf import parse_netconf
from cni_hwol.cni.policy import GOVERNED, NEVER, NodePolicy, apply_node_policy, parse_node_config
from cni_hwol.nodeconf import NODE_CONFIG_PATH

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p
    for d in ("conf", "packaging")
    for p in (ROOT / d).rglob("*")
    if p.suffix in (".yaml", ".yml", ".json", ".conflist")
)
KUBERNETES_VERSION = "1.30.0"


def documents(path: Path) -> list:
    if path.suffix in (".yaml", ".yml"):
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return [json.loads(path.read_text())]


def shipped_node_policy() -> NodePolicy:
    """The node file the DaemonSet installs on every node."""
    configmap = next(d for d in documents(ROOT / "packaging/daemonset.yaml") if d["kind"] == "ConfigMap")
    return parse_node_config(configmap["data"]["node.json"].encode(), "the ConfigMap")


def check_conflist(conflist: dict) -> None:
    assert conflist["plugins"][0]["type"] == "cni-hwol"
    first = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
    apply_node_policy(parse_netconf(json.dumps(first).encode()), shipped_node_policy())  # runs where installed
    # cni-hwol shapes the pod's egress on the VF's devlink rate; no bandwidth plugin after it
    assert [p["type"] for p in conflist["plugins"][1:]] == ["portmap"]
    assert conflist["plugins"][0]["capabilities"]["bandwidth"] is True


def test_there_are_manifests():
    names = {p.name for p in FILES}
    assert {
        "daemonset.yaml",
        "sriovdp-config.yaml",
        "network-attachment-definition.yaml",
        "ovs-offload-pod1.yaml",
        "ovs-offload-pod2.yaml",
        "hwol.conflist",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_parses_and_validates(path):
    for doc in documents(path):
        if path.suffix == ".conflist":
            check_conflist(doc)
        elif doc.get("kind") == "NetworkAttachmentDefinition":
            assert doc["apiVersion"] == "k8s.cni.cncf.io/v1"
            resource = doc["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"]
            assert resource == "mellanox.com/cx5_sriov_switchdev"
            check_conflist(json.loads(doc["spec"]["config"]))
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_device_plugin_selects_connectx5_vfs():
    config = json.loads(documents(ROOT / "conf/sriovdp-config.yaml")[0]["data"]["config.json"])
    resource = config["resourceList"][0]
    assert (resource["resourcePrefix"], resource["resourceName"], resource["isRdma"]) == (
        "mellanox.com",
        "cx5_sriov_switchdev",
        True,
    )
    assert resource["selectors"] == {"vendors": ["15b3"], "devices": ["1018"], "drivers": ["mlx5_core"]}


def test_pods_request_one_vf_on_the_default_network():
    for n in (1, 2):
        pod = documents(ROOT / f"conf/ovs-offload-pod{n}.yaml")[0]
        assert pod["metadata"]["annotations"]["v1.multus-cni.io/default-network"] == "kube-system/default"
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits == {"mellanox.com/cx5_sriov_switchdev": "1"}


def daemonset_document(kind: str) -> dict:
    return next(d for d in documents(ROOT / "packaging/daemonset.yaml") if d["kind"] == kind)


def test_daemonset_installs_with_least_privilege_and_runs_the_executor():
    ds = daemonset_document("DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    assert ds["metadata"]["namespace"] == "kube-system"
    assert spec["nodeSelector"]["cni-hwol.io/ovs-offload"] == "true"
    init = spec["initContainers"][0]
    assert init["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert init["securityContext"].get("privileged") is not True
    assert [v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v] == [
        "/opt/cni/bin",
        "/run/cni-hwol",
        "/etc/cni/cni-hwol",
    ]
    executor = spec["containers"][0]
    assert executor["command"][1:] == ["executor", "--socket", "/run/cni-hwol/executor.sock"]
    assert executor["volumeMounts"] == [{"name": "executor-socket", "mountPath": "/run/cni-hwol"}]


def test_daemonset_installs_a_strict_node_file():
    """Every node gets /etc/cni/cni-hwol/node.json from the ConfigMap, validated by the installer,
    and in it a netconf may ask for no path, socket or sysfs tree of its own."""
    spec = daemonset_document("DaemonSet")["spec"]["template"]["spec"]
    install = spec["initContainers"][0]
    args = install["args"]
    source, dest = args[args.index("--node-config") + 1], args[args.index("--node-config-dest") + 1]
    assert dest == "/host" + NODE_CONFIG_PATH
    mounts = {m["mountPath"]: m["name"] for m in install["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    config_volume = volumes[mounts[os.path.dirname(source)]]
    assert volumes[mounts[os.path.dirname(dest)]]["hostPath"]["path"] == os.path.dirname(NODE_CONFIG_PATH)
    # Only the installer may write the node file: the executor does not mount it.
    assert all(m["name"] != mounts[os.path.dirname(dest)] for m in spec["containers"][0]["volumeMounts"])

    configmap = daemonset_document("ConfigMap")
    assert configmap["metadata"]["name"] == config_volume["configMap"]["name"]
    assert list(configmap["data"]) == [os.path.basename(source)]
    node = shipped_node_policy()
    defaults = parse_netconf(b'{"cniVersion": "1.0.0", "name": "n", "type": "cni-hwol"}')
    assert (node.node.ovsdb_socket, node.node.state_dir, node.node.sysfs_root) == (
        defaults.ovsdb_socket,
        defaults.state_dir,
        defaults.sysfs_root,
    )
    assert node.node.log_file == "/var/log/cni-hwol/cni-hwol.log"
    for key in GOVERNED:
        assert node.rule(key) in (NEVER, (node.node_value(key),)), key.name
