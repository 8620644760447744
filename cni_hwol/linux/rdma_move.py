"""Move a VF's RDMA devices into the pod's netns and back (exclusive RDMA netns mode only).

The kernel moves an RDMA device only if its driver can detach user contexts
(mlx5 can; soft-RoCE rxe and siw cannot) and only in exclusive mode: otherwise
it answers EOPNOTSUPP (drivers/infiniband/core/device.c, ib_device_set_netns_put).
When a netns is destroyed, the kernel moves the RDMA devices in it back to
init_net (rdma_dev_exit_net), so a DEL whose pod netns is gone has nothing to do.
"""

from __future__ import annotations

import errno
import logging
import os

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError
from cni_hwol.linux.netns import NetnsGone, NotANetns, open_netns
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.linux.rdma_netlink import RdmaNetlink, RdmaUnavailable

log = logging.getLogger(__name__)


def _refusal(name: str, vf: str, where: str, exc: OSError) -> CNIError:
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    why = f"{code} ({exc.strerror})"
    if exc.errno == errno.EOPNOTSUPP:  # the kernel's name for 95 (Python's errorcode says ENOTSUP)
        why = f"EOPNOTSUPP ({exc.strerror}): its driver cannot change netns (soft-RoCE rxe and siw cannot)"
        why += ", or the RDMA netns mode is shared"
    return CNIError(DEVICE_ERROR, f"cannot move RDMA device {name} of VF {vf} {where}: {why}")


def move_rdma_into_pod(names: list[str], vf: str, netns_fd: int) -> None:
    """`rdma dev set <name> netns <pod>` for each of the VF's RDMA devices."""
    if not names:
        return
    with RdmaNetlink() as host:
        visible = host.devices()
        for name in names:
            if name not in visible:
                raise CNIError(DEVICE_ERROR, f"RDMA device {name} of VF {vf} is not in the host namespace")
            try:
                host.move(visible[name], netns_fd)
            except NetlinkError as exc:
                raise _refusal(name, vf, "into the pod's namespace", exc) from None
            log.info("moved RDMA device %s of VF %s into the pod", name, vf)


def return_rdma_devices(names: list[str], vf: str, netns_path: str, host_fd: int) -> None:
    """Bring back those of `names` that are in the pod's netns; nothing when it is gone."""
    if not names:
        return
    try:
        netns_fd = open_netns(netns_path)
    except (NetnsGone, NotANetns):
        log.info("pod netns %s is gone: the kernel returned RDMA device(s) %s to init_net", netns_path, names)
        return
    try:
        with RdmaNetlink(netns_fd) as pod:
            there = pod.devices()
            for name in names:
                if name not in there:
                    continue  # never moved (ADD failed first), or already home
                try:
                    pod.move(there[name], host_fd)
                except NetlinkError as exc:
                    raise _refusal(name, vf, "back to the host namespace", exc) from None
                log.info("returned RDMA device %s of VF %s to the host", name, vf)
    except RdmaUnavailable:
        return  # no ib_core, so no RDMA device to return
    finally:
        os.close(netns_fd)
