import json

import pytest

from cni_hwol.cni.env import parse_env
from cni_hwol.cni.errors import DECODE_FAILURE, INCOMPATIBLE_VERSION, INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import (
    DEFAULT_BRIDGE,
    DEFAULT_OVSDB_SOCKET,
    parse_netconf,
    render_external_ids,
    resolve_device_id,
    resolve_mac,
)


def conf(**keys):
    body = {"cniVersion": "1.0.0", "name": "hwol", "type": "cni-hwol", **keys}
    return json.dumps(body).encode()


def env(args=""):
    return parse_env(
        {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "c1",
            "CNI_NETNS": "/n",
            "CNI_IFNAME": "net1",
            "CNI_PATH": "/p",
            "CNI_ARGS": args,
        }
    )


def test_defaults():
    nc = parse_netconf(conf())
    assert nc.bridge == DEFAULT_BRIDGE == "br-int"
    assert nc.ovsdb_socket == DEFAULT_OVSDB_SOCKET
    assert nc.state_dir == "/var/lib/cni/cni-hwol"
    assert nc.sysfs_root == "/sys"
    assert nc.ipam == {} and nc.mtu is None and nc.vlan is None


def test_device_id_precedence_netconf_runtime_config_cni_args():
    e = env("deviceID=0000:03:00.4")
    assert resolve_device_id(parse_netconf(conf(deviceID="0000:03:00.2")), e) == "0000:03:00.2"
    assert resolve_device_id(parse_netconf(conf(runtimeConfig={"deviceID": "0000:03:00.3"})), e) == "0000:03:00.3"
    assert resolve_device_id(parse_netconf(conf()), e) == "0000:03:00.4"


def test_device_id_is_normalised_to_lower_case():
    assert parse_netconf(conf(deviceID="0000:AF:00.2")).device_id == "0000:af:00.2"


@pytest.mark.parametrize("bad", ["03:00.2", "0000:03:00.8", "../../etc", "0000:03:00.2/..", "", "x" * 100])
def test_malformed_device_id_is_code_7(bad):
    with pytest.raises(CNIError) as err:
        resolve_device_id(parse_netconf(conf(deviceID=bad)) if bad else parse_netconf(conf()), env())
    assert err.value.code == INVALID_NETCONF


def test_missing_device_id_explains_where_it_comes_from():
    with pytest.raises(CNIError) as err:
        resolve_device_id(parse_netconf(conf()), env())
    assert err.value.code == INVALID_NETCONF
    assert "Multus" in err.value.msg


def test_mac_precedence():
    nc = parse_netconf(conf(mac="02:00:00:00:00:01", runtimeConfig={"mac": "02:00:00:00:00:03"}))
    assert resolve_mac(nc, env("MAC=02:00:00:00:00:02")) == "02:00:00:00:00:03"
    nc = parse_netconf(conf(mac="02:00:00:00:00:01"))
    assert resolve_mac(nc, env("MAC=02:00:00:00:00:02")) == "02:00:00:00:00:02"
    assert resolve_mac(nc, env()) == "02:00:00:00:00:01"


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "00:00:00:00:00:00", "zz:00:00:00:00:00", "02:00:00:00:00"])
def test_bad_macs(mac):
    with pytest.raises(CNIError):
        parse_netconf(conf(mac=mac))


@pytest.mark.parametrize(
    "keys",
    [
        {"mtu": "1500"},
        {"mtu": 10},
        {"mtu": True},
        {"vlan": 5000},
        {"vlan": -1},
        {"bridge": "a" * 16},
        {"bridge": "br int"},
        {"ovsdbSocket": "ssl:1.2.3.4:6640"},
        {"ovsdbSocket": "unix:relative"},
        {"ovsdbSocket": "tcp:host:99999"},
        {"externalIDs": {"k": 1}},
        {"externalIDs": ["x"]},
        {"externalIDs": {"k": "{{.Nope}}"}},
        {"ipam": {"type": 5}},
        {"ipam": {"type": "../evil"}},
        {"ipam": "host-local"},
        {"stateDir": "relative"},
        {"sysfsRoot": "sys"},
        {"logLevel": "loud"},
        {"name": "bad/name"},
        {"name": ""},
        {"cni.dev/valid-attachments": "x"},
    ],
)
def test_invalid_values_are_code_7(keys):
    with pytest.raises(CNIError) as err:
        parse_netconf(conf(**keys))
    assert err.value.code == INVALID_NETCONF


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'"x"', b"\xff\xfe", b'{"a": 1}\x00'])
def test_undecodable_input_is_code_6(data):
    with pytest.raises(CNIError) as err:
        parse_netconf(data)
    assert err.value.code == DECODE_FAILURE


def test_huge_input_is_refused():
    with pytest.raises(CNIError) as err:
        parse_netconf(b" " * (2 << 20))
    assert err.value.code == DECODE_FAILURE


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "2.0.0", "1.0", "latest"])
def test_unsupported_versions_are_code_1(version):
    with pytest.raises(CNIError) as err:
        parse_netconf(json.dumps({"cniVersion": version, "name": "n"}).encode())
    assert err.value.code == INCOMPATIBLE_VERSION


def test_external_id_templates_are_filled_from_cni_args():
    nc = parse_netconf(
        conf(externalIDs={"iface-id": "{{.PodNamespace}}_{{.PodName}}", "c": "{{ .ContainerID }}/{{.IfName}}"})
    )
    ids = render_external_ids(nc, env("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"))
    assert ids == {"iface-id": "default_web", "c": "c1/net1"}


def test_sriov_cni_neutral_values_parse_as_if_absent():
    """The sriov-network-operator's defaults ("vlan": 0 is sriov-cni's "no VLAN") ask for nothing."""
    neutral = parse_netconf(
        conf(vlan=0, vlanQoS=0, vlanProto="802.1Q", vlan_trunk="", interface_type="system", ipam={}, logLevel="panic")
    )
    plain = parse_netconf(conf(logLevel="error"))
    assert (neutral.vlan, neutral.unsupported, neutral.ipam, neutral.log_level) == (None, (), {}, "error")
    assert (plain.vlan, plain.unsupported, plain.ipam, plain.log_level) == (None, (), {}, "error")


@pytest.mark.parametrize(
    "keys, refusal",
    [
        ({"vlan": 10, "vlanQoS": 4}, "'vlanQoS' 4: the VLAN is the OVS port's tag"),
        ({"vlanQoS": 3}, "'vlanQoS' 3:"),  # sriov-cni refuses a QoS without a VLAN as well
        ({"vlanQoS": 8}, "'vlanQoS' must be 0..7, got 8"),
        ({"vlanQoS": True}, "'vlanQoS' must be 0..7, got true"),
        ({"vlan": 10, "vlanProto": "802.1ad"}, "'vlanProto' 802.1ad:"),
        ({"vlanProto": "qinq"}, '\'vlanProto\' must be "802.1q" or "802.1ad"'),
        ({"vlan_trunk": "2,4,10-20"}, "'vlan_trunk' \"2,4,10-20\" (a VF trunk through the PF)"),
        ({"interface_type": "dpdk"}, "'interface_type' \"dpdk\": cni-hwol adds the representor as a system"),
    ],
)
def test_vf_vlan_keys_that_cannot_be_honoured_are_kept_for_add_to_refuse(keys, refusal):
    parsed = parse_netconf(conf(**keys))  # DEL and CHECK still parse it
    assert len(parsed.unsupported) == 1 and parsed.unsupported[0].startswith(refusal), parsed.unsupported


def test_accelerated_bridge_cni_bridge_lists_choose_among_them_by_the_uplink():
    listed = parse_netconf(conf(bridge="br-a, br-b"))
    assert (listed.bridge, listed.bridges) == ("auto", ("br-a", "br-b"))
    with pytest.raises(CNIError) as caught:
        parse_netconf(conf(bridge="br-a,br-b", bridges=["br-c"]))
    assert caught.value.code == INVALID_NETCONF and "'bridges' is given too" in caught.value.msg
