"""trunk, ofport_request and bridges as netconf keys; the VLAN columns they make; the uplinks sysfs shows."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import parse_netconf
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.hw.uplink import uplinks
from cni_hwol.ovsdb.port_options import PortOptions
from tests.simnode.fake_sysfs import FakeSysfs


def conf(**keys):
    return json.dumps({"cniVersion": "1.0.0", "name": "hwol", "type": "cni-hwol", **keys}).encode()


def test_trunk_ranges_are_expanded_and_duplicates_merged():
    trunk = [{"id": 10}, {"minID": 20, "maxID": 23}, {"id": 21}, {"minID": 0, "maxID": 1}, {"id": 4095}]
    assert parse_netconf(conf(trunk=trunk)).trunk == (0, 1, 10, 20, 21, 22, 23, 4095)
    assert parse_netconf(conf()).trunk == () and parse_netconf(conf(trunk=[])).trunk == ()


def test_vlan_mode_follows_vlan_and_trunk():
    assert PortOptions.requested(None, (), None).port_columns() == {}
    assert PortOptions.requested(100, (), None).port_columns() == {"tag": 100, "vlan_mode": "access"}
    assert PortOptions.requested(None, (5, 6), None).port_columns() == {"trunks": ["set", [5, 6]], "vlan_mode": "trunk"}
    assert PortOptions.requested(7, (5,), None).port_columns() == {
        "tag": 7,
        "trunks": ["set", [5]],
        "vlan_mode": "native-untagged",
    }
    assert PortOptions.requested(None, (), 12).interface_columns() == {"ofport_request": 12}
    options = PortOptions.requested(7, (5, 6), 12)
    assert PortOptions.from_state(json.loads(json.dumps(options.to_state()))) == options


@pytest.mark.parametrize(
    "keys, named",
    [
        ({"trunk": {"id": 5}}, "'trunk'"),
        ({"trunk": [5]}, "trunk[0]"),
        ({"trunk": [{}]}, "trunk[0]"),
        ({"trunk": [{"id": 5, "vlan": 6}]}, "trunk[0]"),
        ({"trunk": [{"id": 4096}]}, "trunk[0].id"),
        ({"trunk": [{"id": -1}]}, "trunk[0].id"),
        ({"trunk": [{"id": True}]}, "trunk[0].id"),
        ({"trunk": [{"id": 1}, {"minID": 9, "maxID": 8}]}, "trunk[1].minID"),
        ({"trunk": [{"minID": 9}]}, "trunk[0]"),
        ({"trunk": [{"minID": 1, "maxID": "9"}]}, "trunk[0].maxID"),
        ({"ofport_request": -1}, "ofport_request"),
        ({"ofport_request": 65280}, "ofport_request"),
        ({"ofport_request": "5"}, "ofport_request"),
        ({"bridges": ["br-a"]}, "'bridges'"),
        ({"bridge": "auto", "bridges": []}, "'bridges'"),
        ({"bridge": "auto", "bridges": "br-a"}, "'bridges'"),
        ({"bridge": "auto", "bridges": ["auto"]}, "'bridges'"),
        ({"bridge": "auto", "bridges": ["br/a"]}, "'bridges': bridge 'br/a'"),
    ],
)
def test_bad_port_options_are_code_7_naming_the_key(keys, named):
    with pytest.raises(CNIError) as err:
        parse_netconf(conf(**keys))
    assert err.value.code == INVALID_NETCONF
    assert named in err.value.msg


def test_auto_bridge_with_allowed_bridges():
    parsed = parse_netconf(conf(bridge="auto", bridges=["br-a", "br-b", "br-a"]))
    assert (parsed.bridge, parsed.bridges) == ("auto", ("br-a", "br-b"))


def test_uplinks_are_the_pf_and_the_kernel_bond_holding_it(tmp_path):
    fake = FakeSysfs(tmp_path / "sys")
    fake.add_pf("0000:03:00.0", "ens1f0np0", "aa", 0x0400, 2)
    fake.add_pf("0000:03:00.1", "ens1f1np1", "bb", 0x0500, 2)
    sysfs = Sysfs(str(fake.root))
    assert uplinks(sysfs, "ens1f0np0") == ["ens1f0np0"]
    fake.add_bond("bond0", ["ens1f0np0", "ens1f1np1"])
    assert uplinks(sysfs, "ens1f0np0") == ["ens1f0np0", "bond0"]
    assert uplinks(sysfs, "ens1f1np1") == ["ens1f1np1", "bond0"]


def test_a_master_that_is_no_bond_is_no_uplink(tmp_path):
    fake = FakeSysfs(tmp_path / "sys")
    fake.add_pf("0000:03:00.0", "ens1f0np0", "aa", 0x0400, 2)
    (fake.root / "class/net/ovs-system").mkdir()  # an OVS kernel-datapath port's master
    (fake.root / "class/net/ens1f0np0/master").symlink_to("../ovs-system")
    assert uplinks(Sysfs(str(fake.root)), "ens1f0np0") == ["ens1f0np0"]


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has no NaN or Infinity
    | st.sampled_from(["auto", "br-a"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "minID", "maxID", "x"]), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["vlan", "trunk", "ofport_request", "bridge", "bridges"]), _values))
def test_any_port_options_parse_or_raise_code_7(keys):
    try:
        parsed = parse_netconf(conf(**keys))
    except CNIError as exc:
        assert exc.code == INVALID_NETCONF and exc.msg
    else:
        assert list(parsed.trunk) == sorted(set(parsed.trunk)) and all(0 <= v <= 4095 for v in parsed.trunk)
