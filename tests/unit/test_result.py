import json

import pytest

from cni_hwol.cni.errors import INCOMPATIBLE_VERSION, CNIError
from cni_hwol.cni.result import Interface, parse_result, render_result
from cni_hwol.cni.versions import SUPPORTED_VERSIONS, version_json

IPAM_040 = {
    "cniVersion": "0.4.0",
    "ips": [
        {"version": "4", "address": "192.168.1.5/24", "gateway": "192.168.1.1"},
        {"version": "6", "address": "fd00::5/64", "gateway": "fd00::1"},
    ],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.0.0.0/8", "gw": "192.168.1.254"}],
    "dns": {"nameservers": ["10.0.0.10"]},
}


def full_result():
    result = parse_result(IPAM_040)
    result.interfaces = [
        Interface("rep0", "aa:bb:cc:dd:ee:01"),
        Interface("net1", "02:00:00:00:00:01", "/var/run/netns/p", 9000, "0000:03:00.2"),
    ]
    for ip in result.ips:
        ip.interface = 1
    return result


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_old_versions_carry_the_ip_version_field(version):
    body = render_result(full_result(), version)
    assert body["cniVersion"] == version
    assert [ip["version"] for ip in body["ips"]] == ["4", "6"]
    assert "pciID" not in body["interfaces"][1] and "mtu" not in body["interfaces"][1]


def test_1_0_0_drops_the_ip_version_field():
    body = render_result(full_result(), "1.0.0")
    assert all("version" not in ip for ip in body["ips"])
    assert body["ips"][0] == {"address": "192.168.1.5/24", "gateway": "192.168.1.1", "interface": 1}


def test_1_1_0_adds_interface_mtu_and_pci_id():
    body = render_result(full_result(), "1.1.0")
    pod = body["interfaces"][1]
    assert pod == {
        "name": "net1",
        "mac": "02:00:00:00:00:01",
        "mtu": 9000,
        "sandbox": "/var/run/netns/p",
        "pciID": "0000:03:00.2",
    }
    assert body["interfaces"][0] == {"name": "rep0", "mac": "aa:bb:cc:dd:ee:01"}


def test_round_trip_through_every_version():
    for version in SUPPORTED_VERSIONS:
        again = parse_result(render_result(full_result(), version))
        assert [ip.address for ip in again.ips] == ["192.168.1.5/24", "fd00::5/64"]
        assert again.dns == {"nameservers": ["10.0.0.10"]}


def test_unsupported_render_version():
    with pytest.raises(CNIError) as err:
        render_result(full_result(), "0.2.0")
    assert err.value.code == INCOMPATIBLE_VERSION


@pytest.mark.parametrize(
    "bad", [{"ips": [{"address": "nope"}]}, {"ips": [{}]}, {"routes": [{"gw": "1.1.1.1"}]}, {"dns": "x"}, [], "x"]
)
def test_unreadable_results(bad):
    with pytest.raises(CNIError):
        parse_result(bad)


def test_version_answer_is_json_listing_every_version():
    body = json.loads(version_json())
    assert body == {"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}
