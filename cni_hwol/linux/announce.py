"""Tell the fabric where a pod's addresses now live.

A gratuitous ARP for IPv4 and an unsolicited neighbour advertisement for IPv6,
sent from inside the pod's namespace, refresh switch MAC tables and neighbour
caches that may still point at a previous owner of the address.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct

from cni_hwol.linux.netns import socket_in

log = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ALL_NODES_MAC = bytes.fromhex("333300000001")
ALL_NODES_IP6 = ipaddress.IPv6Address("ff02::1").packed


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def gratuitous_arp(mac: str, ip: str) -> bytes:
    src = _mac_bytes(mac)
    addr = ipaddress.IPv4Address(ip).packed
    # Ethernet, then an ARP request for our own address (RFC 5227 announcement).
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src, addr, b"\0" * 6, addr)
    return BROADCAST + src + struct.pack("!H", ETH_P_ARP) + arp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicited_na(mac: str, ip: str) -> bytes:
    src = _mac_bytes(mac)
    addr = ipaddress.IPv6Address(ip).packed
    # ICMPv6 type 136, flags: override; target; option 2 (target link-layer address).
    body = struct.pack("!BBHI16sBB6s", 136, 0, 0, 0x20000000, addr, 2, 1, src)
    pseudo = addr + ALL_NODES_IP6 + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", _checksum(pseudo + body)) + body[4:]
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, len(body), 58, 255, addr, ALL_NODES_IP6)
    return ALL_NODES_MAC + src + struct.pack("!H", ETH_P_IPV6) + ipv6 + body


def announce(netns_fd: int, ifname: str, mac: str, addresses: list[str]) -> None:
    """Best effort: a lost announcement only delays learning, so it never fails ADD."""
    try:
        sock = socket_in(netns_fd, socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as exc:
        log.warning("cannot open a packet socket to announce %s: %s", addresses, exc)
        return
    with sock:
        try:
            sock.bind((ifname, 0))
            for cidr in addresses:
                ip = ipaddress.ip_interface(cidr).ip
                frame = gratuitous_arp(mac, str(ip)) if ip.version == 4 else unsolicited_na(mac, str(ip))
                sock.send(frame)
        except OSError as exc:
            log.warning("announcing %s on %s failed: %s", addresses, ifname, exc)
