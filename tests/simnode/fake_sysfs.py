"""Write the PCI sysfs tree of an SR-IOV NIC in switchdev mode under a temp root.

Mirrors the kernel's layout (real directories under devices/, symlinks from
bus/pci/devices and class/net) and mlx5's habit of parenting representors on
the PF's PCI function.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MELLANOX = "0x15b3"
CX5_PF = "0x1017"
CX5_VF = "0x1018"


def pci_address(routing_id: int) -> str:
    return f"0000:{routing_id >> 8:02x}:{(routing_id >> 3) & 0x1F:02x}.{routing_id & 7}"


def routing_id(address: str) -> int:
    _, bus, devfn = address.split(":")
    device, function = devfn.split(".")
    return int(bus, 16) << 8 | int(device, 16) << 3 | int(function)


class FakeSysfs:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in (
            "devices/pci0000:00",
            "bus/pci/devices",
            "class/net",
            "class/infiniband",
            "bus/pci/drivers/mlx5_core",
        ):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def _device_dir(self, address: str) -> Path:
        return self.root / "devices" / "pci0000:00" / address

    @staticmethod
    def _write(directory: Path, attrs: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, value in attrs.items():
            (directory / name).write_text(value + "\n")

    def _add_pci_function(self, address: str, device: str) -> Path:
        directory = self._device_dir(address)
        self._write(directory, {"vendor": MELLANOX, "device": device})
        (directory / "net").mkdir(exist_ok=True)
        os.symlink(f"../../../devices/pci0000:00/{address}", self.root / "bus/pci/devices" / address)
        os.symlink("../../../bus/pci/drivers/mlx5_core", directory / "driver")
        return directory

    def _add_netdev(self, device_dir: Path, name: str, attrs: dict[str, str]) -> None:
        self._write(device_dir / "net" / name, attrs)
        os.symlink("../..", device_dir / "net" / name / "device")  # class/net/<name>/device -> the PCI function
        link = self.root / "class/net" / name
        os.symlink(os.path.relpath(device_dir / "net" / name, link.parent), link)

    def add_pf(self, address: str, netdev: str, switch_id: str, vf_base_rid: int, num_vfs: int) -> None:
        directory = self._add_pci_function(address, CX5_PF)
        self._write(
            directory,
            {
                "sriov_totalvfs": str(max(num_vfs, 8)),
                "sriov_numvfs": str(num_vfs),
                "sriov_offset": str(vf_base_rid - routing_id(address)),
                "sriov_stride": "1",
            },
        )
        self._add_netdev(directory, netdev, {"phys_switch_id": switch_id, "phys_port_name": "p0"})

    def add_vf(self, pf_address: str, index: int, vf_base_rid: int, netdev: str | None) -> str:
        address = pci_address(vf_base_rid + index)
        directory = self._add_pci_function(address, CX5_VF)
        os.symlink(f"../{pf_address}", directory / "physfn")
        os.symlink(f"../{address}", self._device_dir(pf_address) / f"virtfn{index}")
        if netdev:
            self._add_netdev(directory, netdev, {})
        return address

    def add_representor(self, pf_address: str, netdev: str, switch_id: str, port_name: str) -> None:
        self._add_netdev(
            self._device_dir(pf_address), netdev, {"phys_switch_id": switch_id, "phys_port_name": port_name}
        )

    def rename_netdev(self, pci: str, old: str, new: str) -> None:
        """What the kernel's sysfs shows when a VF netdev comes back under another name."""
        device_dir = self._device_dir(pci)
        (device_dir / "net" / old).rename(device_dir / "net" / new)
        (self.root / "class/net" / old).unlink(missing_ok=True)
        link = self.root / "class/net" / new
        os.symlink(os.path.relpath(device_dir / "net" / new, link.parent), link)

    def bind_driver(self, pci: str, driver: str, netdev: str | None = None) -> None:
        """What sysfs shows once the PCI function is bound to `driver`: its `driver` link,
        and its netdev (None for a userspace driver such as vfio-pci, which has none)."""
        (self.root / "bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
        directory = self._device_dir(pci)
        (directory / "driver").unlink()
        os.symlink(f"../../../bus/pci/drivers/{driver}", directory / "driver")
        for name in self.vf_netdevs(pci):
            (self.root / "class/net" / name).unlink(missing_ok=True)
            (directory / "net" / name / "device").unlink()
            for attr in (directory / "net" / name).iterdir():
                attr.unlink()
            (directory / "net" / name).rmdir()
        if netdev:
            self._add_netdev(directory, netdev, {})

    def add_rdma_device(self, pci: str, name: str, netdev: str) -> None:
        """An RDMA device of a PCI function, as ib_core registers it: <pci>/infiniband/<name>,
        linked from class/infiniband, with its port's netdev (ports/1/gid_attrs/ndevs/0)."""
        directory = self._device_dir(pci) / "infiniband" / name
        self._write(directory, {"node_type": "1: CA"})
        self._write(directory / "ports/1/gid_attrs/ndevs", {"0": netdev})
        os.symlink("../..", directory / "device")
        link = self.root / "class/infiniband" / name
        os.symlink(os.path.relpath(directory, link.parent), link)

    def remove_rdma_device(self, pci: str, name: str) -> None:
        (self.root / "class/infiniband" / name).unlink()
        shutil.rmtree(self._device_dir(pci) / "infiniband" / name)

    def vf_netdevs(self, pci: str) -> list[str]:
        return sorted(os.listdir(self._device_dir(pci) / "net"))

    def add_bond(self, bond: str, slaves: list[str]) -> None:
        """A kernel bond (VF-LAG) holding the netdevs `slaves`: class/net/<slave>/master -> the bond."""
        directory = self.root / "devices" / "virtual" / "net" / bond
        (directory / "bonding").mkdir(parents=True)
        os.symlink(f"../../devices/virtual/net/{bond}", self.root / "class/net" / bond)
        for slave in slaves:
            os.symlink(f"../../../../devices/virtual/net/{bond}", self.root / "class/net" / slave / "master")
