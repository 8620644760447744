"""ovs-cni's netconf keys as its users write them (k8snetworkplumbingwg/ovs-cni docs/cni-plugin.md
and its Go NetConf): the same meaning here, or code 7 naming the key where it has none for a
hardware-offloaded VF. Each parse is compared whole, as a NetConf, with the netconf it must equal."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import NetConf, parse_netconf
from cni_hwol.cni.policy import apply_node_policy, parse_node_config


def parsed(**keys) -> NetConf:
    body = {"cniVersion": "1.0.0", "name": "net", "type": "cni-hwol", "deviceID": "0000:03:00.2", **keys}
    return dataclasses.replace(parse_netconf(json.dumps(body).encode()), raw=b"")


@pytest.mark.parametrize(
    "unset",
    [
        {"mtu": 0},
        {"ofport_request": 0},
        {"link_state_check_retries": 0},
        {"link_state_check_interval": 0},
        {"bridge": ""},
        {"socket_file": ""},
        {"interface_type": ""},
        {"configuration_path": ""},
        {"ovsdbSocket": ""},  # our own spelling reads "" as unset too, as the node file's policy does
    ],
    ids=lambda keys: f"{next(iter(keys))}={json.dumps(next(iter(keys.values())))}",
)
def test_what_ovs_cni_reads_as_unset_gets_the_defaults_here(unset):
    # ovs-cni's Go struct has no "absent": 0 and "" are its unset values (its own defaults for
    # the link-state keys are the same 5 x 600 ms as here).
    assert parsed(**unset) == parsed()


@pytest.mark.parametrize(
    "socket_file, ovsdb_socket",
    [
        ("/usr/local/var/run/openvswitch/db.sock", "unix:/usr/local/var/run/openvswitch/db.sock"),
        ("unix:/run/openvswitch/db.sock", "unix:/run/openvswitch/db.sock"),
        ("tcp:192.0.2.1:6640", "tcp:192.0.2.1:6640"),
    ],
)
def test_socket_file_is_the_ovsdb_socket(socket_file, ovsdb_socket):
    # ovs-cni: "If no socket type is specified, it is assumed to be a unix domain socket".
    assert parsed(socket_file=socket_file) == parsed(ovsdbSocket=ovsdb_socket)
    assert parsed(socket_file=socket_file, ovsdbSocket=ovsdb_socket) == parsed(ovsdbSocket=ovsdb_socket)


def test_interface_type_system_is_the_representors_own_type():
    assert parsed(interface_type="system") == parsed()


@pytest.mark.parametrize(
    "keys, refusal",
    [
        ({"interface_type": "dpdk"}, "'interface_type' \"dpdk\""),
        ({"interface_type": "internal"}, "'interface_type' \"internal\""),
        ({"interface_type": "dpdkvhostuserclient"}, "'interface_type'"),
        ({"interface_type": 5}, "'interface_type' 5"),
        ({"configuration_path": "/etc/cni/net.d/ovs.d/ovs.conf"}, "'configuration_path'"),
    ],
)
def test_ovs_cni_keys_without_that_meaning_here_are_kept_for_add_to_refuse(keys, refusal):
    # DEL and CHECK parse them, so an attachment made before they were refused still comes off.
    unsupported = parsed(**keys).unsupported
    assert len(unsupported) == 1 and unsupported[0].startswith(refusal), unsupported


@pytest.mark.parametrize(
    "keys, named",
    [
        ({"socket_file": "ssl:192.0.2.1:6640"}, "socket_file 'ssl:192.0.2.1:6640'"),
        ({"socket_file": "db.sock"}, "socket_file 'db.sock'"),
        ({"socket_file": 6640}, "'socket_file'"),
        ({"socket_file": "/run/a.sock", "ovsdbSocket": "unix:/run/b.sock"}, "'socket_file'"),
    ],
)
def test_ovs_cni_socket_files_without_that_meaning_here_are_code_7_naming_them(keys, named):
    with pytest.raises(CNIError) as err:
        parsed(**keys)
    assert err.value.code == INVALID_NETCONF
    assert named in err.value.msg


def test_a_node_file_governs_socket_file_as_it_governs_ovsdb_socket():
    node_file = {"settings": {"ovsdbSocket": "unix:/run/ovs/db.sock"}, "netconf": {}}
    node = parse_node_config(json.dumps(node_file).encode(), "/etc/node.json")
    body = {"cniVersion": "1.0.0", "name": "net", "type": "cni-hwol"}

    def applied(**keys) -> NetConf:
        return apply_node_policy(parse_netconf(json.dumps({**body, **keys}).encode()), node)

    with pytest.raises(CNIError) as err:
        applied(socket_file="/run/elsewhere/db.sock")
    assert err.value.code == INVALID_NETCONF
    assert err.value.msg.startswith("socket_file 'unix:/run/elsewhere/db.sock' is not allowed on this node")
    assert applied(socket_file="/run/ovs/db.sock").ovsdb_socket == "unix:/run/ovs/db.sock"
    assert applied().ovsdb_socket == "unix:/run/ovs/db.sock"


@pytest.mark.parametrize("spelling", ["OvnPort", "ovnport", "OVNPORT"])
def test_a_pods_cni_args_are_read_in_any_case_as_ovs_cni_reads_them(spelling):
    written = parsed(args={"cni": {spelling: "default_web", "MAC": "02:00:00:00:00:07", "ExternalIDs": {"k": "v"}}})
    assert written == parsed(
        args={"cni": {"ovnPort": "default_web", "mac": "02:00:00:00:00:07", "externalIDs": {"k": "v"}}}
    )
    assert written.cni_args.external_ids == {"k": "v"}
    with pytest.raises(CNIError) as err:
        parsed(args={"cni": {spelling: "default_web", "ovnPort": "default_db"}})
    assert err.value.code == INVALID_NETCONF and "'args.cni' names ovnPort more than once" in err.value.msg


@pytest.mark.parametrize("spelling", ["ovnPort", "OvnPort", "ovnport"])
def test_a_node_file_governs_the_ovn_port_in_any_spelling(spelling):
    node_file = {"settings": {}, "netconf": {"args.cni.ovnPort": ["default_web"]}}
    node = parse_node_config(json.dumps(node_file).encode(), "/etc/node.json")
    body = {"cniVersion": "1.0.0", "name": "net", "type": "cni-hwol"}

    def applied(port: str) -> NetConf:
        return apply_node_policy(parse_netconf(json.dumps({**body, "args": {"cni": {spelling: port}}}).encode()), node)

    assert applied("default_web").cni_args.ovn_port == "default_web"
    with pytest.raises(CNIError) as err:
        applied("other-namespace_db")
    assert err.value.code == INVALID_NETCONF
    assert err.value.msg.startswith("args.cni.ovnPort 'other-namespace_db' is not allowed on this node")
