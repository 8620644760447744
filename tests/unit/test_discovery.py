"""VF, PF and representor discovery on sysfs trees laid out in temp folders."""

import os

import pytest

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError
from cni_hwol.hw.devlink import FLAVOUR_PCI_VF, Devlink, DevlinkPort, use_devlink_source
from cni_hwol.hw.driver import bound_driver, is_userspace_driver
from cni_hwol.hw.representor import find_representor
from cni_hwol.hw.sysfs import Sysfs
from tests.simnode.fake_devlink import FakeDevlink
from tests.simnode.fake_sysfs import FakeSysfs

PF0, PF1 = "0000:03:00.0", "0000:03:00.1"
SWITCH0, SWITCH1 = "aa00", "bb00"


@pytest.fixture(autouse=True)
def devlink():
    """No devlink unless a test gives one: never the host's, which may know these addresses."""
    fake = FakeDevlink(absent=True)
    use_devlink_source(lambda: fake)
    yield fake
    use_devlink_source(Devlink)


def pf0_ports(rep_prefix: str = "ens1f0_") -> list[DevlinkPort]:
    handle = f"pci/{PF0}"
    uplink = DevlinkPort(handle, 65535, 0, 0, None, "ens1f0np0")
    return [uplink] + [DevlinkPort(handle, 1 + vf, FLAVOUR_PCI_VF, 0, vf, f"{rep_prefix}{vf}") for vf in range(4)]


@pytest.fixture
def tree(tmp_path):
    fake = FakeSysfs(tmp_path / "sys")
    fake.add_pf(PF0, "ens1f0np0", SWITCH0, 0x0400, 4)
    fake.add_pf(PF1, "ens1f1np1", SWITCH1, 0x0500, 4)
    for vf in range(4):
        fake.add_vf(PF0, vf, 0x0400, f"ens1f0v{vf}")
        fake.add_representor(PF0, f"ens1f0_{vf}", SWITCH0, f"pf0vf{vf}")
        fake.add_vf(PF1, vf, 0x0500, None if vf == 3 else f"ens1f1v{vf}")
        fake.add_representor(PF1, f"ens1f1_{vf}", SWITCH1, f"pf1vf{vf}")
    return fake


def test_resolves_vf_pf_index_and_netdevs(tree):
    vf = Sysfs(str(tree.root)).resolve_vf("0000:04:00.2")
    assert (vf.pf_pci_address, vf.pf_number, vf.vf_index) == (PF0, 0, 2)
    assert (vf.pf_netdev, vf.netdev) == ("ens1f0np0", "ens1f0v2")


def test_vf_of_second_pf_and_vf_without_netdev(tree):
    vf = Sysfs(str(tree.root)).resolve_vf("0000:05:00.3")
    assert (vf.pf_pci_address, vf.pf_number, vf.vf_index, vf.netdev) == (PF1, 1, 3, None)


def test_index_found_by_scanning_when_offset_and_stride_are_absent(tree):
    for pf in (PF0,):
        os.remove(tree.root / "devices/pci0000:00" / pf / "sriov_offset")
    assert Sysfs(str(tree.root)).resolve_vf("0000:04:00.3").vf_index == 3


def test_same_vf_number_on_two_pfs_maps_to_each_pfs_representor(tree):
    sysfs = Sysfs(str(tree.root))
    for address, expected in (("0000:04:00.1", "ens1f0_1"), ("0000:05:00.1", "ens1f1_1")):
        rep = find_representor(sysfs.resolve_vf(address), sysfs)
        assert (rep.netdev, rep.source) == (expected, "sysfs")  # the devlink fixture has none


def test_devlink_answers_before_sysfs(tree, devlink):
    # devlink's pcivf port names another netdev than sysfs would: devlink wins, and says so.
    devlink.absent, devlink.port_table, devlink.modes = False, pf0_ports("rep"), {f"pci/{PF0}": "switchdev"}
    sysfs = Sysfs(str(tree.root))
    rep = find_representor(sysfs.resolve_vf("0000:04:00.2"), sysfs)
    assert (rep.netdev, rep.source, rep.devlink_handle) == ("rep2", "devlink", f"pci/{PF0}")


def test_a_pf_in_legacy_mode_is_refused_with_the_fix(tree, devlink):
    devlink.absent, devlink.port_table, devlink.modes = False, pf0_ports(), {f"pci/{PF0}": "legacy"}
    sysfs = Sysfs(str(tree.root))
    with pytest.raises(CNIError) as err:
        find_representor(sysfs.resolve_vf("0000:04:00.1"), sysfs)
    assert err.value.code == DEVICE_ERROR
    assert f"devlink dev eswitch set pci/{PF0} mode switchdev" in err.value.msg


def test_controller_and_legacy_port_names(tmp_path):
    fake = FakeSysfs(tmp_path / "sys")
    fake.add_pf(PF0, "p0", SWITCH0, 0x0400, 2)
    fake.add_vf(PF0, 0, 0x0400, "v0")
    fake.add_vf(PF0, 1, 0x0400, "v1")
    fake.add_representor(PF0, "rep-c1", SWITCH0, "c1pf0vf0")
    fake.add_representor(PF0, "rep-legacy", SWITCH0, "1")
    sysfs = Sysfs(str(fake.root))
    assert sysfs.find_representor(sysfs.resolve_vf("0000:04:00.0"))[0] == "rep-c1"
    assert sysfs.find_representor(sysfs.resolve_vf("0000:04:00.1"))[0] == "rep-legacy"


def test_port_name_on_another_switch_is_not_a_match(tree):
    tree.add_representor(PF1, "impostor", "cc00", "pf0vf0")
    sysfs = Sysfs(str(tree.root))
    assert sysfs.find_representor(sysfs.resolve_vf("0000:04:00.0"))[0] == "ens1f0_0"


def test_two_representors_for_one_vf_is_an_error(tree):
    tree.add_representor(PF0, "twin", SWITCH0, "pf0vf0")
    sysfs = Sysfs(str(tree.root))
    with pytest.raises(CNIError, match="several representors"):
        sysfs.find_representor(sysfs.resolve_vf("0000:04:00.0"))


def test_no_representor_says_what_was_looked_at(tree):
    os.remove(tree.root / "devices/pci0000:00" / PF0 / "net/ens1f0_2/phys_port_name")
    sysfs = Sysfs(str(tree.root))
    with pytest.raises(CNIError) as err:
        find_representor(sysfs.resolve_vf("0000:04:00.2"), sysfs)
    assert err.value.code == DEVICE_ERROR
    assert "pf0vf2" in err.value.details and "devlink: not available" in err.value.details


def test_legacy_mode_pf_without_switch_id(tree):
    os.remove(tree.root / "devices/pci0000:00" / PF0 / "net/ens1f0np0/phys_switch_id")
    sysfs = Sysfs(str(tree.root))
    _, why = sysfs.find_representor(sysfs.resolve_vf("0000:04:00.0"))
    assert "switchdev" in why


def test_pf_is_not_a_vf(tree):
    with pytest.raises(CNIError, match="not an SR-IOV VF"):
        Sysfs(str(tree.root)).resolve_vf(PF0)


def test_unknown_pci_address(tree):
    with pytest.raises(CNIError, match="no PCI device"):
        Sysfs(str(tree.root)).resolve_vf("0000:99:00.0")


def test_links_leading_outside_the_root_are_refused(tree, tmp_path):
    outside = tmp_path / "elsewhere" / "0000:06:00.0"
    outside.mkdir(parents=True)
    os.symlink(outside, tree.root / "bus/pci/devices/0000:06:00.0")
    with pytest.raises(CNIError, match="outside"):
        Sysfs(str(tree.root)).resolve_vf("0000:06:00.0")
    vf_dir = tree.root / "devices/pci0000:00/0000:04:00.0"
    os.remove(vf_dir / "physfn")
    os.symlink(outside, vf_dir / "physfn")
    with pytest.raises(CNIError, match="outside"):
        Sysfs(str(tree.root)).resolve_vf("0000:04:00.0")


@pytest.mark.parametrize("driver", ["vfio-pci", "uio_pci_generic", "igb_uio"])
def test_a_vf_on_a_userspace_driver_is_told_from_sysfs(tree, driver):
    sysfs = Sysfs(str(tree.root))
    assert (bound_driver(sysfs, "0000:04:00.1"), is_userspace_driver("mlx5_core")) == ("mlx5_core", False)
    tree.bind_driver("0000:04:00.1", driver)
    vf = sysfs.resolve_vf("0000:04:00.1")
    assert (vf.netdev, bound_driver(sysfs, vf.pci_address), is_userspace_driver(driver)) == (None, driver, True)
    os.remove(tree.root / "devices/pci0000:00/0000:04:00.1/driver")
    assert (bound_driver(sysfs, "0000:04:00.1"), is_userspace_driver(None)) == (None, False)
