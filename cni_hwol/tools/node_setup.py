"""`cni-hwol node-setup`: the node preparation procedure as one idempotent command.

VFs (sriov_numvfs), PF up, VFs unbound, eswitch to switchdev, hw-tc-offload on,
VFs bound again. Each step says what it changed or that nothing needed to;
--dry-run says what it would do. The first failing step stops the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cni_hwol.cni.errors import CNIError
from cni_hwol.hw.devlink import open_devlink
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.linux.ethtool import enable_feature, feature_state
from cni_hwol.linux.links import Netlink
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.state import StateStore
from cni_hwol.tools.doctor import not_a_pf, pf_device, vf_addresses
from cni_hwol.tools.report import Report


class StepFailed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class NodeSetup:
    def __init__(self, sysfs_root: str, pf: str, vfs: int, state_dir: str, dry_run: bool) -> None:
        self.sysfs = Sysfs(sysfs_root)
        self.pf, self.vfs, self.dry_run = pf, vfs, dry_run
        self.state_dir = state_dir
        self.pf_dir = pf_device(self.sysfs, pf)
        self.unbound: list[tuple[str, str]] = []  # (VF address, driver) to bind again

    def _change(self, done: str, would: str, action: Callable[[], None]) -> str:
        if self.dry_run:
            return f"would {would}"
        action()
        return done

    def numvfs(self) -> str:
        current = int(self.sysfs.read_attr(self.pf_dir / "sriov_numvfs") or 0)
        if current == self.vfs:
            return f"already {current} VFs"
        in_use = [
            s.key.describe() for s in StateStore(self.state_dir).all_attachments() if s.pf_device_id == self.pf_dir.name
        ]
        if in_use:
            raise StepFailed(
                f"VFs of {self.pf} are attached to pods: {', '.join(in_use)}",
                "delete those pods first; changing sriov_numvfs destroys every VF",
            )
        total = int(self.sysfs.read_attr(self.pf_dir / "sriov_totalvfs") or 0)
        if self.vfs > total:
            raise StepFailed(f"{self.vfs} VFs asked, the PF supports {total}", f"use --vfs {total} or fewer")

        def apply() -> None:
            if current:
                _write(self.pf_dir / "sriov_numvfs", "0")  # the kernel refuses N -> M directly
            _write(self.pf_dir / "sriov_numvfs", str(self.vfs))

        return self._change(f"sriov_numvfs {current} -> {self.vfs}", f"set sriov_numvfs {current} -> {self.vfs}", apply)

    def pf_up(self) -> str:
        with Netlink() as host:
            link = host.get(self.pf)
            if link is None:
                raise StepFailed(f"no link {self.pf} in this network namespace", "check --pf")
            if link.up:
                return f"{self.pf} already up"

            def apply() -> None:
                try:
                    host.set_up(link)
                except CNIError as exc:
                    raise StepFailed(
                        f"the kernel refused to set {self.pf} up: {exc.details or exc}",
                        f"check `ip link show {self.pf}` and `dmesg` (driver, firmware, link partner)",
                    ) from None

            return self._change(f"{self.pf} set up", f"set {self.pf} up", apply)

    def _driver_write(self, action: str) -> str:
        """Write each recorded VF to its driver's bind or unbind file."""
        names = " ".join(vf for vf, _ in self.unbound)

        def apply() -> None:
            for vf, driver in self.unbound:
                _write(self.sysfs.root / "bus/pci/drivers" / driver / action, vf)

        return self._change(f"{action} done: {names}", f"{action} {names}", apply)

    def unbind(self) -> str:
        for vf in vf_addresses(self.pf_dir):
            driver = self.pf_dir.parent / vf / "driver"
            if driver.exists():
                self.unbound.append((vf, os.path.basename(os.path.realpath(driver))))
        return self._driver_write("unbind") if self.unbound else "no VF bound"

    def switchdev(self) -> str:
        with open_devlink() as devlink:
            if devlink.absent:
                raise StepFailed(
                    "devlink is not available on this kernel",
                    "use a kernel with devlink (CONFIG_NET_DEVLINK) and mlx5_core",
                )
            handle = next((p.handle for p in devlink.ports() if p.netdev == self.pf), f"pci/{self.pf_dir.name}")
            if devlink.eswitch_mode(handle) == "switchdev":
                return f"{handle} already in switchdev mode"

            def apply() -> None:
                try:
                    devlink.set_eswitch_mode(handle, "switchdev")
                except NetlinkError as exc:
                    raise StepFailed(
                        f"devlink eswitch set {handle} mode switchdev: {exc}",
                        "check `dmesg` (firmware, VFs still bound)",
                    ) from None

            return self._change(f"{handle} switched to switchdev", f"switch {handle} to switchdev", apply)

    def tc_offload(self) -> str:
        state = feature_state(self.pf, "hw-tc-offload")
        if state == "on":
            return f"hw-tc-offload already on for {self.pf}"
        if state != "off":
            raise StepFailed(f"hw-tc-offload is {state} on {self.pf}", "the NIC or driver cannot offload tc")
        return self._change(
            f"hw-tc-offload on for {self.pf}",
            f"turn hw-tc-offload on for {self.pf}",
            lambda: enable_feature(self.pf, "hw-tc-offload"),
        )

    def bind(self) -> str:
        return self._driver_write("bind") if self.unbound else "nothing to bind"


def node_setup(sysfs_root: str, pf: str, vfs: int, state_dir: str, dry_run: bool = False) -> Report:
    report = Report("node-setup" + (" (dry run)" if dry_run else ""))
    why_not = not_a_pf(Sysfs(sysfs_root), pf)
    if why_not:
        report.add("PF", False, why_not, "check --pf")
        return report
    setup = NodeSetup(sysfs_root, pf, vfs, state_dir, dry_run)
    steps = [
        ("VFs", setup.numvfs),
        ("PF up", setup.pf_up),
        ("unbind VFs", setup.unbind),
        ("eswitch switchdev", setup.switchdev),
        ("hw-tc-offload", setup.tc_offload),
        ("bind VFs", setup.bind),
    ]
    for name, step in steps:
        try:
            report.add(name, True, step())
        except (StepFailed, CNIError, OSError) as exc:
            detail, fix = (exc.detail, exc.fix) if isinstance(exc, StepFailed) else (str(exc), "see the error")
            report.add(name, False, detail, fix)
            for later, _ in steps[steps.index((name, step)) + 1 :]:
                report.add(later, False, "not run: an earlier step failed", "fix the failed step and run again")
            if setup.unbound and not dry_run and name != "bind VFs":
                # Never leave the VFs without a driver: the node's pods need them.
                report.add("bind VFs again after the failure", True, setup.bind())
            break
    return report
