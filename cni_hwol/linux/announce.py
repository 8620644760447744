"""Have the kernel tell the fabric where a pod's addresses now live.

With arp_notify and ndisc_notify set on the pod interface, the kernel sends a
gratuitous ARP for every IPv4 address as the link comes up, and an unsolicited
neighbour advertisement for every usable IPv6 address (at link up, and when
DAD completes), refreshing switch MAC tables and neighbour caches that may
still point at a previous owner of an address. The reference bridge plugin
relies on arp_notify the same way. The addresses must be on the link before it
comes up (addressing.py does it in that order).

The plugin used to send these frames itself from a packet socket; closing one
waits for an RCU grace period (packet_release), ~12 ms of every ADD.
"""

from __future__ import annotations

import logging
import os

from cni_hwol.linux.netns import entered

log = logging.getLogger(__name__)

_SYSCTLS = ("/proc/sys/net/ipv4/conf/{}/arp_notify", "/proc/sys/net/ipv6/conf/{}/ndisc_notify")


def enable_announcements(netns_fd: int, ifname: str) -> None:
    """Best effort: a lost announcement only delays learning, so it never fails ADD.

    /proc/sys/net shows the namespace of the task that opens it, so each file is
    opened and written from inside the pod's namespace.
    """
    with entered(netns_fd):
        for template in _SYSCTLS:
            path = template.format(ifname)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # IPv6 compiled out or disabled at boot
            except OSError as exc:
                log.warning("cannot enable announcements through %s: %s", path, exc)
                continue
            try:
                os.write(fd, b"1")
            except OSError as exc:
                log.warning("cannot enable announcements through %s: %s", path, exc)
            finally:
                os.close(fd)
