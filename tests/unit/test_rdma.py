"""RDMA: a VF's RDMA devices found on a fake sysfs tree, the refusal when the
netns mode cannot be read, and the RDMA_NLDEV_CMD_SET message's layout."""

import logging
import os
import socket
import struct

import pytest

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError
from cni_hwol.hw.rdma import rdma_devices, rdma_devices_to_move
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.linux.rdma_move import return_rdma_devices
from cni_hwol.linux.rdma_netlink import NETLINK_RDMA, RdmaNetlink
from tests.simnode.fake_sysfs import FakeSysfs

PF = "0000:03:00.0"
BASE = 0x0400


def rdma_netlink_here() -> bool:
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_RDMA).close()
        return True
    except OSError:
        return False


@pytest.fixture
def tree(tmp_path):
    fake = FakeSysfs(tmp_path / "sys")
    fake.add_pf(PF, "ens1f0np0", "aa00", BASE, 2)
    vfs = [fake.add_vf(PF, vf, BASE, f"ens1f0v{vf}") for vf in range(2)]
    fake.add_rdma_device(vfs[1], "mlx5_3", "ens1f0v1")
    return fake, vfs


def test_rdma_device_found_under_its_vf_only(tree):
    fake, (plain_vf, rdma_vf) = tree
    sysfs = Sysfs(str(fake.root))
    assert rdma_devices(sysfs, rdma_vf) == ["mlx5_3"]
    assert rdma_devices(sysfs, plain_vf) == []
    assert rdma_devices_to_move(sysfs, plain_vf) == ([], "")  # no RDMA device: no netlink request


@pytest.mark.skipif(rdma_netlink_here(), reason="this kernel has RDMA netlink (ib_core loaded)")
def test_rdma_device_without_rdma_netlink_refused(tree):
    fake, (_, rdma_vf) = tree
    with pytest.raises(CNIError) as caught:
        rdma_devices_to_move(Sysfs(str(fake.root)), rdma_vf)
    assert caught.value.code == DEVICE_ERROR
    assert "mlx5_3" in caught.value.msg and "netns mode cannot be read" in caught.value.msg


def test_set_netns_request_layout():
    """<rdma/rdma_netlink.h>: type RDMA_NL_GET_TYPE(RDMA_NL_NLDEV=5, RDMA_NLDEV_CMD_SET=2), then
    RDMA_NLDEV_ATTR_DEV_INDEX (1) and RDMA_NLDEV_NET_NS_FD (68), u32 each, as iproute2's rdma sends."""
    header = struct.pack("=IHHII", 32, (5 << 10) + 2, 0x1 | 0x4, 9, 0)
    attrs = struct.pack("=HHI", 8, 1, 3) + struct.pack("=HHI", 8, 68, 7)
    sent = []

    class Socket:  # what RdmaNetlink.move hands its socket: the message, its type, extra flags
        def request(self, msg, msg_type, flags):
            sent.append((msg, msg_type, flags))
            return []

    rdma = RdmaNetlink.__new__(RdmaNetlink)
    rdma.sock = Socket()
    rdma.move(dev_index=3, netns_fd=7)
    ((msg, msg_type, flags),) = sent
    assert (msg_type, flags) == ((5 << 10) + 2, 0)  # no DUMP; the socket adds REQUEST and ACK
    msg["header"].update(type=msg_type, flags=0x1 | 0x4, sequence_number=9, pid=0)  # as the socket sends it
    msg.encode()
    assert msg.data == header + attrs


def test_return_with_the_pod_netns_gone_has_nothing_to_do(tmp_path, caplog):
    """The kernel returns a destroyed netns' RDMA devices to init_net (rdma_dev_exit_net)."""
    host_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    logger = logging.getLogger("cni_hwol.linux.rdma_move")
    logger.addHandler(caplog.handler)  # the plugin's logging setup, run by earlier tests, stops propagation
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            return_rdma_devices(["mlx5_3"], "0000:04:00.1", str(tmp_path / "gone"), host_fd)
    finally:
        logger.removeHandler(caplog.handler)
        os.close(host_fd)
    assert "the kernel returned RDMA device(s) ['mlx5_3'] to init_net" in caplog.text
