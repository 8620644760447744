"""Turn one ethtool feature on (hw-tc-offload) through the SIOCETHTOOL ioctl."""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

SIOCETHTOOL = 0x8946
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GFEATURES = 0x3A
ETHTOOL_SFEATURES = 0x3B
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32


def _ioctl(sock: socket.socket, ifname: str, buffer: ctypes.Array) -> None:
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(buffer))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


def _feature_names(sock: socket.socket, ifname: str) -> list[str]:
    info = ctypes.create_string_buffer(struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
    _ioctl(sock, ifname, info)
    count = struct.unpack_from("I", info.raw, 16)[0]
    strings = ctypes.create_string_buffer(12 + count * ETH_GSTRING_LEN)
    struct.pack_into("III", strings, 0, ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count)
    _ioctl(sock, ifname, strings)
    raw = strings.raw[12:]
    return [raw[i * ETH_GSTRING_LEN : (i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode() for i in range(count)]


def _features(sock: socket.socket, ifname: str, feature: str) -> tuple[list[str], int, int, tuple[int, ...]]:
    """Feature names, the feature's block and mask, and that block's (available, requested, active, fixed)."""
    names = _feature_names(sock, ifname)
    if feature not in names:
        return names, -1, 0, (0, 0, 0, 0)
    bit = names.index(feature)
    blocks = (len(names) + 31) // 32
    block, mask = bit // 32, 1 << (bit % 32)
    current = ctypes.create_string_buffer(8 + blocks * 16)
    struct.pack_into("II", current, 0, ETHTOOL_GFEATURES, blocks)
    _ioctl(sock, ifname, current)
    return names, block, mask, struct.unpack_from("IIII", current.raw, 8 + block * 16)


def feature_state(ifname: str, feature: str) -> str:
    """ "on", "off", "off [fixed]" (cannot change) or "unknown" (no such feature or link)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            _, block, mask, (available, _, active, never_changed) = _features(sock, ifname, feature)
    except OSError:
        return "unknown"
    if block < 0:
        return "unknown"
    if active & mask:
        return "on"
    return "off [fixed]" if not available & mask or never_changed & mask else "off"


def enable_feature(ifname: str, feature: str) -> str:
    """Turn a feature on; answers "on", "already on" or "unsupported" (fixed off)."""
    return _set_feature(ifname, feature, True)


def disable_feature(ifname: str, feature: str) -> str:
    """Turn a feature off; answers "off", "already off" or "unsupported" (fixed on)."""
    return _set_feature(ifname, feature, False)


def _set_feature(ifname: str, feature: str, on: bool) -> str:
    wanted = "on" if on else "off"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        names, block, mask, (available, _, active, never_changed) = _features(sock, ifname, feature)
        if bool(active & mask) == on:
            return f"already {wanted}"
        if block < 0 or not available & mask or never_changed & mask:
            return "unsupported"
        blocks = (len(names) + 31) // 32
        change = ctypes.create_string_buffer(8 + blocks * 8)
        struct.pack_into("II", change, 0, ETHTOOL_SFEATURES, blocks)
        struct.pack_into("II", change, 8 + block * 8, mask, mask if on else 0)
        _ioctl(sock, ifname, change)
        return wanted
