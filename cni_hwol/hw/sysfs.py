"""The kernel's sysfs view of SR-IOV devices, read under a configurable root.

Layout used (as the kernel has it):
  bus/pci/devices/<VF>/physfn       -> the PF's PCI device
  bus/pci/devices/<PF>/virtfn<N>    -> VF number N
  bus/pci/devices/<dev>/net/<name>  netdevs of a PCI function, in this netns
  class/net/<name>/phys_switch_id   eswitch id shared by PF and representors
  class/net/<name>/phys_port_name   "p0" (uplink), "pf0vf3", "c1pf0vf3", legacy "3"
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cni_hwol.cni.errors import DEVICE_ERROR, CNIError

_UPLINK_PORT = re.compile(r"p\d+")


@dataclass(frozen=True)
class VirtualFunction:
    pci_address: str
    pf_pci_address: str
    pf_number: int  # the PF's PCI function number, as devlink's pfnum counts
    vf_index: int
    pf_netdev: str
    netdev: str | None  # the VF's name in this netns; None while it is elsewhere


def _pci_function(address: str) -> int:
    return int(address.rsplit(".", 1)[1])


def _routing_id(address: str) -> int:
    """PCI requester id (bus << 8 | device << 3 | function) of DDDD:BB:DD.F."""
    _, bus, devfn = address.split(":")
    device, function = devfn.split(".")
    return int(bus, 16) << 8 | int(device, 16) << 3 | int(function)


class Sysfs:
    def __init__(self, root: str = "/sys") -> None:
        self.root = Path(root)
        self._real_root = os.path.realpath(root)

    def _inside(self, path: Path, what: str) -> Path:
        """Resolve links and refuse anything that leaves the sysfs root."""
        real = os.path.realpath(path)
        if real != self._real_root and not real.startswith(self._real_root + os.sep):
            raise CNIError(DEVICE_ERROR, f"{what} resolves outside {self.root}: {real}")
        return Path(real)

    @staticmethod
    def read_attr(path: Path) -> str | None:
        try:
            return path.read_text().strip()
        except OSError:
            return None

    def pci_device(self, address: str) -> Path:
        link = self.root / "bus" / "pci" / "devices" / address
        if not link.exists():
            raise CNIError(DEVICE_ERROR, f"no PCI device {address} in {self.root}/bus/pci/devices")
        return self._inside(link, f"PCI device {address}")

    def netdevs_of(self, device: Path) -> list[str]:
        """Netdev names of a PCI function as this netns sees them."""
        try:
            return sorted(os.listdir(device / "net"))
        except OSError:
            return []

    def netdev_attr(self, name: str, attr: str) -> str | None:
        return self.read_attr(self.root / "class" / "net" / name / attr)

    def netdev_names(self) -> list[str]:
        try:
            return os.listdir(self.root / "class" / "net")
        except OSError:
            return []

    def _vf_index(self, pf_dir: Path, vf_dir: Path, vf_address: str) -> int:
        # The VF's routing id gives its index directly (PCIe SR-IOV: first VF
        # offset and stride); check that guess, then fall back to a scan.
        offset = self.read_attr(pf_dir / "sriov_offset")
        stride = self.read_attr(pf_dir / "sriov_stride")
        if offset and stride and offset.isdigit() and stride.isdigit() and int(stride):
            distance = _routing_id(vf_address) - _routing_id(pf_dir.name) - int(offset)
            guess = distance // int(stride)
            if distance >= 0 and distance % int(stride) == 0:
                link = pf_dir / f"virtfn{guess}"
                if link.exists() and os.path.realpath(link) == str(vf_dir):
                    return guess
        for entry in os.listdir(pf_dir):
            is_virtfn = entry.startswith("virtfn") and entry[6:].isdigit()
            if is_virtfn and os.path.realpath(pf_dir / entry) == str(vf_dir):
                return int(entry[6:])
        raise CNIError(DEVICE_ERROR, f"{vf_address} is not listed among the virtfn links of {pf_dir.name}")

    def pf_netdev(self, pf_dir: Path) -> str:
        """The PF's own netdev; in switchdev mode its PCI function also lists representors."""
        names = self.netdevs_of(pf_dir)
        uplinks = [n for n in names if _UPLINK_PORT.fullmatch(self.netdev_attr(n, "phys_port_name") or "")]
        if len(uplinks) == 1:
            return uplinks[0]
        plain = [n for n in names if not self.netdev_attr(n, "phys_port_name")]
        if len(names) == 1:
            return names[0]
        if len(plain) == 1:
            return plain[0]
        raise CNIError(
            DEVICE_ERROR,
            f"cannot tell the netdev of PF {pf_dir.name} among {names or 'none'}: "
            "is the PF driver bound and its netdev in this network namespace?",
        )

    def resolve_vf(self, address: str) -> VirtualFunction:
        vf_dir = self.pci_device(address)
        physfn = vf_dir / "physfn"
        if not physfn.exists():
            raise CNIError(DEVICE_ERROR, f"{address} is not an SR-IOV VF (no physfn link in {vf_dir})")
        pf_dir = self._inside(physfn, f"physfn of {address}")
        netdevs = self.netdevs_of(vf_dir)
        if len(netdevs) > 1:
            raise CNIError(DEVICE_ERROR, f"VF {address} has several netdevs: {netdevs}")
        return VirtualFunction(
            pci_address=address,
            pf_pci_address=pf_dir.name,
            pf_number=_pci_function(pf_dir.name),
            vf_index=self._vf_index(pf_dir, vf_dir, address),
            pf_netdev=self.pf_netdev(pf_dir),
            netdev=netdevs[0] if netdevs else None,
        )

    def find_representor(self, vf: VirtualFunction) -> tuple[str | None, str]:
        """The representor by phys_switch_id + phys_port_name; also says what was looked at."""
        switch_id = self.netdev_attr(vf.pf_netdev, "phys_switch_id")
        if not switch_id:
            return None, (f"PF {vf.pf_netdev} has no phys_switch_id (is the eswitch in switchdev mode?)")
        exact = f"pf{vf.pf_number}vf{vf.vf_index}"
        controller = re.compile(rf"c\d+pf{vf.pf_number}vf{vf.vf_index}")
        legacy = str(vf.vf_index)
        ranked: dict[int, list[str]] = {0: [], 1: [], 2: []}
        for name in self.netdev_names():
            port = self.netdev_attr(name, "phys_port_name")
            if port is None or port not in (exact, legacy) and not controller.fullmatch(port):
                continue
            if self.netdev_attr(name, "phys_switch_id") != switch_id:
                continue
            ranked[0 if port == exact else 1 if port != legacy else 2].append(name)
        for rank in (0, 1, 2):
            if len(ranked[rank]) == 1:
                return ranked[rank][0], ""
            if len(ranked[rank]) > 1:
                raise CNIError(
                    DEVICE_ERROR,
                    f"several representors claim VF {vf.vf_index} of {vf.pf_netdev}: {ranked[rank]}",
                )
        return None, (
            f"no netdev in {self.root}/class/net has phys_switch_id {switch_id} and "
            f"phys_port_name {exact} (or c<N>{exact}, or {legacy})"
        )
