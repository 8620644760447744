"""Inside the VM: RDMA on Debian's kernel, with soft-RoCE (rdma_rxe) in exclusive netns mode.

guest.sh loads rdma_rxe and sets the exclusive mode before any netns exists. A rxe
device on a VF's dummy netdev, listed in the fake sysfs under the VF's PCI function,
is what ADD finds and tries to move; the kernel refuses to move a soft-RoCE device
(EOPNOTSUPP: rxe cannot detach user contexts), so what can be proven here is the
request's bytes (against what `rdma dev set` sends) and the refusal's clean rollback.
A real move needs a device whose driver can change netns (mlx5).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

if os.environ.get("CNI_HWOL_KERNEL_GUEST") != "1":
    pytest.skip("runs inside the VM booted by tests/kernel/run.sh", allow_module_level=True)

from cni_hwol.cni.errors import DEVICE_ERROR  # noqa: E402
from tests.kernel.knode import sh  # noqa: E402

RDMA_NLDEV_CMD_SET_TYPE = (5 << 10) + 2  # RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_SET)
NET_NS_FD = 68


@contextmanager
def rxe_on(knode, dev: int, vf: int, name: str) -> Iterator[str]:
    """A soft-RoCE device on VF (dev, vf)'s netdev, described in the VF's fake sysfs; its PCI address."""
    pci = knode.vfs[(dev, vf)]
    sh("rdma", "link", "add", name, "type", "rxe", "netdev", f"vf{dev}x{vf}")
    knode.sysfs.add_rdma_device(pci, name, f"vf{dev}x{vf}")
    try:
        yield pci
    finally:
        knode.sysfs.remove_rdma_device(pci, name)
        sh("rdma", "link", "delete", name, check=False)


def rdma_devices(netns: str | None = None) -> list[tuple]:
    """The RDMA devices a namespace sees, with their index and netdev."""
    where = ["ip", "netns", "exec", netns] if netns else []
    links = json.loads(sh(*where, "rdma", "-j", "link", "show") or "[]")
    return sorted((e["ifname"].split("/")[0], e["ifindex"], e.get("netdev")) for e in links)


def sent_messages(strace_output: str, msg_type: int) -> list[bytes]:
    """The netlink messages of type `msg_type` in strace's hex dumps (-e write=all)."""
    buffers: list[bytearray] = []
    for line in strace_output.splitlines():
        if re.match(r"^\d+ +send(to|msg)\(", line):
            buffers.append(bytearray())
        dump = re.match(r"^ \| [0-9a-f]{5}  (.{49})", line)
        if dump and buffers:
            buffers[-1] += bytes(int(t, 16) for t in dump.group(1).split() if re.fullmatch(r"[0-9a-f]{2}", t))
    messages = [bytes(b[: int.from_bytes(b[:4], "little")]) for b in buffers if len(b) >= 16]
    return [m for m in messages if int.from_bytes(m[4:6], "little") == msg_type]


def attributes(message: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each attribute after the 16-byte netlink header."""
    found, offset = [], 16
    while offset + 4 <= len(message):
        length, kind = int.from_bytes(message[offset : offset + 2], "little"), message[offset + 2]
        found.append((kind | message[offset + 3] << 8, message[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    return found


def masked(message: bytes) -> tuple:
    """Type, flags and attributes; the netns fd's number (a per-process choice) masked."""
    attrs = [(kind, b"fd" if kind == NET_NS_FD and len(value) == 4 else value) for kind, value in attributes(message)]
    return (message[4:6], message[6:8], attrs)


def strace(workdir: Path, *argv: str) -> str:
    out = workdir / "strace.txt"
    subprocess.run(
        ["strace", "-f", "-xx", "-e", "trace=sendto,sendmsg", "-e", "write=all", "-o", str(out), *argv],
        capture_output=True,
        check=False,
    )
    return out.read_text()


def test_rdma_exclusive_mode_set_before_any_netns():
    assert "netns exclusive" in sh("rdma", "system", "show")


def test_rdma_move_request_bytes_match_iproute2(knode, pod, tmp_path):
    """The plugin's RDMA_NLDEV_CMD_SET (RdmaNetlink.move) against `rdma dev set <dev> netns <ns>`."""
    with rxe_on(knode, 1, 0, "rxek0"):
        ((_, index, _),) = [d for d in rdma_devices() if d[0] == "rxek0"]
        theirs = sent_messages(strace(tmp_path, "rdma", "dev", "set", "rxek0", "netns", pod), RDMA_NLDEV_CMD_SET_TYPE)
        ours_code = (
            "import os; from cni_hwol.linux.rdma_netlink import RdmaNetlink\n"
            f"fd = os.open('/run/netns/{pod}', os.O_RDONLY)\n"
            "with RdmaNetlink() as rdma:\n"
            f"    try: rdma.move({index}, fd)\n"
            "    except OSError as exc: print(exc)\n"
        )
        ours = sent_messages(strace(tmp_path, sys.executable, "-c", ours_code), RDMA_NLDEV_CMD_SET_TYPE)
    assert len(theirs) == 1 and len(ours) == 1, (theirs, ours)
    assert masked(ours[0]) == masked(theirs[0])
    assert attributes(ours[0])[0] == (1, index.to_bytes(4, "little"))  # RDMA_NLDEV_ATTR_DEV_INDEX: the device's


def rdma_view(pod: str) -> dict:
    return {"host": rdma_devices(), "pod": rdma_devices(pod)}


def test_rdma_rxe_move_refused_and_add_rolled_back(knode, pod):
    with rxe_on(knode, 1, 0, "rxek1") as pci:
        before = (knode.snapshot(pod), rdma_view(pod))
        assert ("rxek1", "vf1x0") in [(name, netdev) for name, _, netdev in before[1]["host"]]
        status, body, stderr = knode.exec_plugin("ADD", pod, pci)
        assert (status, body.get("code")) == (1, DEVICE_ERROR), (body, stderr)
        assert body["msg"] == (
            f"cannot move RDMA device rxek1 of VF {pci} into the pod's namespace: EOPNOTSUPP (Operation not"
            " supported): its driver cannot change netns (soft-RoCE rxe and siw cannot), or the RDMA netns mode"
            " is shared"
        )
        assert (knode.snapshot(pod), rdma_view(pod)) == before
