"""`cni-hwol doctor`: is this node ready for offloaded pods?

Reads sysfs, devlink, ethtool, OVSDB, CNI_PATH and the state directory;
changes nothing.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from cni_hwol.cni.errors import CNIError
from cni_hwol.hw.devlink import Devlink, open_devlink
from cni_hwol.hw.rdma import rdma_devices, read_netns_mode
from cni_hwol.hw.representor import find_representor
from cni_hwol.hw.sysfs import Sysfs
from cni_hwol.linux.ethtool import feature_state
from cni_hwol.linux.links import Netlink
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.linux.rdma_netlink import SHARED
from cni_hwol.linux.tc_rules import foreign_tc_rules
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable, from_ovs_map
from cni_hwol.state import StateStore
from cni_hwol.tools.report import Report


def sriov_pfs(sysfs: Sysfs) -> list[str]:
    """The netdev of every PCI function that can have VFs (sriov_totalvfs > 0).

    Starts from the PCI functions: in switchdev mode the representors hang off
    the PF's function too, so a walk over class/net would take them for PFs.
    """
    found = []
    devices = sysfs.root / "bus/pci/devices"
    for address in sorted(os.listdir(devices)) if devices.is_dir() else []:
        total = sysfs.read_attr(devices / address / "sriov_totalvfs")
        if total and total.isdigit() and int(total) > 0:
            try:
                found.append(sysfs.pf_netdev(sysfs.pci_device(address)))
            except CNIError:
                continue  # no netdev (driver unbound): nothing to check by name
    return found


def pf_device(sysfs: Sysfs, pf: str) -> Path:
    return Path(os.path.realpath(sysfs.root / "class/net" / pf / "device"))


def not_a_pf(sysfs: Sysfs, pf: str) -> str | None:
    """Why netdev `pf` cannot be an SR-IOV PF, or None when it is a PCI function's netdev."""
    netdev = sysfs.root / "class/net" / pf
    if not netdev.exists():
        return f"no netdev {pf} in {sysfs.root}/class/net"
    if not (netdev / "device").exists():
        return f"{pf} has no PCI device (a virtual netdev?): not an SR-IOV PF"
    return None


def vf_addresses(pf_dir: Path) -> list[str]:
    links = sorted((e for e in os.listdir(pf_dir) if e.startswith("virtfn")), key=lambda e: int(e[6:]))
    return [os.path.basename(os.path.realpath(pf_dir / e)) for e in links]


def check_pf(report: Report, sysfs: Sysfs, devlink: Devlink, pf: str) -> None:
    pf_dir = pf_device(sysfs, pf)
    total = sysfs.read_attr(pf_dir / "sriov_totalvfs") or "0"
    report.add(
        f"{pf}: SR-IOV",
        total.isdigit() and int(total) > 0,
        f"sriov_totalvfs={total}",
        "enable SR-IOV in the NIC firmware (mlxconfig -d <dev> set SRIOV_EN=1 NUM_OF_VFS=<n>) and BIOS",
    )
    numvfs = int(sysfs.read_attr(pf_dir / "sriov_numvfs") or 0)
    report.add(f"{pf}: VFs created", numvfs > 0, f"sriov_numvfs={numvfs}", f"cni-hwol node-setup --pf {pf} --vfs <n>")
    vfs = vf_addresses(pf_dir)
    unbound = [vf for vf in vfs if not (pf_dir.parent / vf / "driver").exists()]
    report.add(
        f"{pf}: VFs bound to their driver",
        not unbound and bool(vfs),
        f"{len(vfs) - len(unbound)}/{len(vfs)} bound" + (f"; unbound: {' '.join(unbound)}" if unbound else ""),
        f"echo <pci> > /sys/bus/pci/drivers/mlx5_core/bind for each of: {' '.join(unbound)}",
    )
    handle = f"pci/{pf_dir.name}"
    for port in devlink.ports():
        if port.netdev == pf:
            handle = port.handle
    mode = devlink.eswitch_mode(handle)
    if mode is None:
        switchdev = bool(sysfs.netdev_attr(pf, "phys_switch_id"))
        detail = "devlink unavailable; sysfs phys_switch_id " + ("present" if switchdev else "absent")
    else:
        switchdev, detail = mode == "switchdev", f"devlink {handle}: {mode}"
    report.add(
        f"{pf}: eswitch in switchdev mode",
        switchdev,
        detail,
        f"cni-hwol node-setup --pf {pf} --vfs {numvfs or '<n>'} (or: devlink dev eswitch set {handle} mode switchdev)",
    )
    state = feature_state(pf, "hw-tc-offload")
    report.add(f"{pf}: hw-tc-offload", state == "on", state, f"ethtool -K {pf} hw-tc-offload on")
    missing = []
    for address in vfs:
        try:
            find_representor(sysfs.resolve_vf(address), sysfs)
        except CNIError:
            missing.append(address)
    report.add(
        f"{pf}: every VF has a representor",
        not missing and bool(vfs),
        f"{len(vfs) - len(missing)}/{len(vfs)} found" + (f"; missing: {' '.join(missing)}" if missing else ""),
        "switch the eswitch to switchdev mode with the VFs unbound, then bind them (node-setup does this)",
    )


def check_ovs(report: Report, ovsdb: str, bridge: str) -> None:
    try:
        with OvsdbClient(ovsdb, timeout=5.0) as client:
            ovs, bridges = (
                r["rows"]
                for r in client.transact(
                    {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["other_config"]},
                    {"op": "select", "table": "Bridge", "where": [["name", "==", bridge]], "columns": ["name"]},
                )
            )
    except (OvsdbUnavailable, OvsdbError) as exc:
        report.add(
            "OVS reachable", False, str(exc), "start Open vSwitch, or pass --ovsdb unix:<path>|tcp:<host>:<port>"
        )
        return
    report.add("OVS reachable", True, ovsdb)
    offload = from_ovs_map(ovs[0]["other_config"]).get("hw-offload", "false") if ovs else "false"
    report.add(
        "OVS hw-offload",
        offload == "true",
        f"other_config:hw-offload={offload}",
        "ovs-vsctl set Open_vSwitch . other_config:hw-offload=true, then restart ovs-vswitchd",
    )
    report.add(f"bridge {bridge}", bool(bridges), "present" if bridges else "missing", f"ovs-vsctl add-br {bridge}")


def check_cni(report: Report, cni_path: list[str], state_dir: str) -> None:
    for plugin in ("cni-hwol", "host-local"):
        where = next((os.path.join(d, plugin) for d in cni_path if os.access(os.path.join(d, plugin), os.X_OK)), None)
        report.add(
            f"{plugin} on CNI_PATH",
            where is not None,
            where or f"not in {':'.join(cni_path)}",
            "kubectl apply -f packaging/daemonset.yaml"
            if plugin == "cni-hwol"
            else "install containernetworking-plugins into /opt/cni/bin",
        )
    unreadable: list[str] = []
    attachments = StateStore(state_dir).all_attachments(unreadable)
    stale = [s for s in attachments if s.netns and not os.path.exists(s.netns)]
    report.add(
        "state directory",
        not stale,
        f"{state_dir}: "
        + (
            f"{len(stale)} attachment(s) whose netns is gone: " + ", ".join(s.key.describe() for s in stale)
            if stale
            else "no stale attachment"
        ),
        "the runtime's DEL or GC removes them; by hand: cnitool del <network> <netns> with the same container id",
    )
    report.add(
        "state files readable",
        not unreadable,
        "; ".join(unreadable) or f"{len(attachments)} in {state_dir}",
        "GC skips these files and DEL of their attachment fails (code 5): find the attachment (OVS port"
        " external_ids, the VF), clean it up by hand, then remove the file",
    )


TC_RULES_FIX = (
    "they take the pod's traffic off the hardware path: drop the `bandwidth` plugin from the network's"
    " chain and give cni-hwol the `bandwidth` capability (the VF's devlink rate; or max_tx_rate), then"
    " remove them (tc qdisc del dev {rep} root; tc filter del dev {rep} ingress pref <pref>)"
)


def check_representor_tc(report: Report, state_dir: str) -> None:
    """Each attached representor carries only OVS's tc rules (README: "Do not chain bandwidth")."""
    attachments = StateStore(state_dir).all_attachments()
    warned = 0
    with Netlink() as links:
        for state in attachments:
            try:
                rules = foreign_tc_rules(links, state.representor)
            except LookupError:
                continue  # no such netdev here: the attachment's own checks say so
            except NetlinkError as exc:
                report.add(f"{state.representor}: tc rules", False, f"cannot read them: {exc}", "run as root")
                continue
            if rules:
                warned += 1
                report.warn(
                    f"{state.representor}: tc rules not OVS's",
                    f"{'; '.join(rules)} (attachment {state.key.describe()})",
                    TC_RULES_FIX.format(rep=state.representor),
                )
    if not warned:
        report.add("tc rules on representors", True, f"{len(attachments)} attached, only OVS's rules")


def check_rdma(report: Report, sysfs: Sysfs, pfs: list[str], state_dir: str) -> None:
    """The RDMA netns mode, and where the RDMA devices of each VF are (host, or the pod ADD moved them to)."""
    in_host = {vf: rdma_devices(sysfs, vf) for pf in pfs for vf in vf_addresses(pf_device(sysfs, pf))}
    in_host = {vf: names for vf, names in in_host.items() if names}
    try:
        mode = read_netns_mode()
        detail = mode or "no RDMA netlink (ib_core not loaded): this node has no RDMA devices"
    except OSError as exc:
        mode, detail = None, f"cannot be read: {exc}"
    ok = mode is not None or not in_host
    if not ok:
        detail += f"; yet sysfs lists RDMA devices of {' '.join(in_host)}: ADD of these VFs fails"
    report.add("RDMA netns mode", ok, detail, "modprobe ib_core and the NIC's RDMA driver (mlx5_ib)")
    for vf, names in in_host.items():
        where = "the host namespace" + (", shared with every pod" if mode == SHARED else "")
        report.add(f"{vf}: RDMA devices", True, f"{' '.join(names)} in {where}")
    for state in StateStore(state_dir).all_attachments():
        if state.rdma_devices:
            where = f"pod netns {state.netns} ({state.key.describe()})"
            report.add(f"{state.device_id}: RDMA devices", True, f"{' '.join(state.rdma_devices)} in {where}")


# docs/packaging.md, "Which nodes": the oldest the plugin is built and tested for (RHEL 8).
MIN_KERNEL = (4, 18)
MIN_GLIBC = (2, 28)


def leading_version(text: str) -> tuple[int, ...]:
    """(4, 18) from "4.18.0-553.el8_10.x86_64"; () when text starts with no number."""
    parts = []
    for part in text.split("-")[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def check_platform(report: Report, kernel: str | None = None, glibc: str | None = None) -> None:
    """The node's kernel, and the glibc the plugin runs on (the tree's own, bundled with it)."""
    kernel = kernel or platform.release()
    report.add(
        "kernel",
        leading_version(kernel) >= MIN_KERNEL,
        f"{kernel} (needs {'.'.join(map(str, MIN_KERNEL))} or newer)",
        "a node kernel of 4.18 or newer (docs/packaging.md)",
    )
    glibc = glibc or (os.confstr("CS_GNU_LIBC_VERSION") or "unknown").removeprefix("glibc ")
    report.add(
        "glibc",
        leading_version(glibc) >= MIN_GLIBC,
        f"{glibc} (needs {'.'.join(map(str, MIN_GLIBC))} or newer)",
        "install the PyInstaller tree, which brings its own glibc (docs/packaging.md)",
    )


def doctor(
    sysfs_root: str, ovsdb: str, bridge: str, state_dir: str, cni_path: list[str], pf: str | None = None
) -> Report:
    report = Report("doctor")
    check_platform(report)
    sysfs = Sysfs(sysfs_root)
    pfs = [pf] if pf else sriov_pfs(sysfs)
    report.add(
        "SR-IOV PFs",
        bool(pfs),
        " ".join(pfs) or f"none in {sysfs_root}/class/net",
        "check the NIC and its driver (lspci -nn | grep 15b3; modprobe mlx5_core)",
    )
    with open_devlink() as devlink:
        for name in pfs:
            why_not = not_a_pf(sysfs, name)
            if why_not:
                report.add(
                    f"{name}: PF", False, why_not, "pass the PF's netdev as --pf (ip -d link: the one with vf lines)"
                )
                continue
            check_pf(report, sysfs, devlink, name)
    check_rdma(report, sysfs, [name for name in pfs if not not_a_pf(sysfs, name)], state_dir)
    check_ovs(report, ovsdb, bridge)
    check_cni(report, cni_path, state_dir)
    check_representor_tc(report, state_dir)
    return report
