"""What must hold on the node after every step of the soak, whatever faults came before.

The model (run.Model) says which attachments are live: ADD answered 0, or the runtime still owes
them a DEL. Everything the plugin leaves on the node must belong to one of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cni_hwol.ovsdb.ports import CONTAINER_ID_KEY, OWNER_KEY, STALE_KEY
from tests.simnode import SimNode
from tests.simnode.nsexec import run


@dataclass(frozen=True)
class Home:
    """A VF and its representor as the node had them before the soak."""

    vf_name: str
    mac: str
    mtu: int
    rep_name: str
    rep_mtu: int
    userspace: bool = False  # bound to vfio-pci: vf_name is the link its driver would drive, never moved


def links(netns: str) -> list[dict]:
    return json.loads(run(["ip", "-j", "link", "show"], netns=netns).stdout)


def homes(node: SimNode) -> dict[str, Home]:
    """Each VF's home (PCI address -> name, MAC, MTU, and its representor's), read once at the start."""
    by_name = {link["ifname"]: link for link in links(node.netns)}
    return {
        vf.pci: Home(
            vf.vf_name,
            by_name[vf.vf_name]["address"],
            by_name[vf.vf_name]["mtu"],
            vf.rep_name,
            by_name[vf.rep_name]["mtu"],
            vf in node.userspace_vfs,
        )
        for vf in node.vfs + node.userspace_vfs
    }


def ports(node: SimNode) -> dict[str, tuple[str, bool]]:
    """cni-hwol's OVS ports on every bridge: port name -> (container id, marked stale)."""
    out = node.ovs.vsctl("--format=json", "--columns=name,external_ids", "list", "Port")
    found = {}
    for name, ids in json.loads(out)["data"]:
        ids = dict(ids[1])
        if ids.get(OWNER_KEY) == "cni-hwol":
            found[name] = (ids.get(CONTAINER_ID_KEY, ""), STALE_KEY in ids)
    return found


def leases(ipam_dir: Path) -> dict[str, str]:
    """host-local's leases: address file -> the container id written in it."""
    return {
        str(p.relative_to(ipam_dir)): p.read_text().split()[0] if p.read_text().split() else ""
        for p in ipam_dir.rglob("*")
        if p.is_file() and not p.name.startswith(("lock", "last_reserved_ip"))
    }


def state_owners(state_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Container ids of the attachment state files, of the VF claims, and the stale port records."""
    attachments = [p.name.split(":")[0] for p in state_dir.glob("attachments/*/*.json")]
    claims = [json.loads(p.read_text())["container_id"] for p in state_dir.glob("devices/*.json")]
    stale = [p.stem for p in state_dir.glob("stale-ports/*.json")]
    return attachments, claims, stale


def violations(node: SimNode, home: dict[str, Home], live: dict[str, tuple[str, str]], ovsdb_up: bool) -> list[str]:
    """Every broken invariant. live: container id -> (VF PCI address, pod netns path)."""
    found: list[str] = []
    where: dict[str, list[str]] = {pci: [] for pci, h in home.items() if not h.userspace}
    node_links = links(node.netns)
    for link in node_links:
        if link.get("ifalias") in where:
            where[link["ifalias"]].append("node")
    for cid, (_, netns) in live.items():
        if Path(netns).exists():
            for link in links(netns):
                if link.get("ifalias") in where:
                    where[link["ifalias"]].append(cid)
    holder = {pci: cid for cid, (pci, _) in live.items()}
    by_name = {link["ifname"]: link for link in node_links}
    for pci, places in where.items():
        h = home[pci]
        if pci in holder:
            # In its pod, or home under any name while the pod's netns is gone (DEL is owed).
            if places not in ([holder[pci]], ["node"]):
                found.append(f"VF {pci} of live {holder[pci]} is in {places}")
            continue
        if places != ["node"]:
            found.append(f"free VF {pci} is in {places}, not home")
            continue
        vf = by_name.get(h.vf_name)
        if vf is None or vf.get("ifalias") != pci:
            found.append(f"free VF {pci} is not home under its name {h.vf_name}")
        elif (vf["address"], vf["mtu"]) != (h.mac, h.mtu):
            found.append(f"free VF {h.vf_name}: MAC/MTU {vf['address']}/{vf['mtu']}, was {h.mac}/{h.mtu}")
        found += representor_home(by_name, pci, h)
    for pci, h in home.items():
        if h.userspace:
            found += userspace_vf_in_place(node, by_name, pci, h, pci in holder)
    lease_owners = leases(node.ipam_dir)
    for path, cid in lease_owners.items():
        if cid not in live:
            found.append(f"lease {path} of dead attachment {cid}")
    for cid in live:
        held = [p for p, owner in lease_owners.items() if owner == cid]
        if len(held) > 1:
            found.append(f"live attachment {cid} holds {len(held)} leases: {held}")
    attachments, claims, stale = state_owners(node.state_dir)
    for cid in attachments:
        if cid not in live:
            found.append(f"state file of dead attachment {cid}")
    for cid in claims:
        if cid not in live:
            found.append(f"VF claim of dead attachment {cid}")
    if ovsdb_up:
        for port, (cid, marked) in ports(node).items():
            # DEL while OVSDB was down records the port; the next ADD reaching OVSDB marks it.
            if cid not in live and port not in stale and not marked:
                found.append(f"OVS port {port} of dead attachment {cid}, neither recorded nor marked stale")
    return found


def representor_home(by_name: dict[str, dict], pci: str, h: Home) -> list[str]:
    """A free VF's representor is up with its MTU from before, as ADD found it."""
    rep = by_name.get(h.rep_name)
    if rep is None or rep["mtu"] != h.rep_mtu or "UP" not in rep["flags"]:
        seen = rep and (rep["mtu"], rep["flags"])
        return [f"representor {h.rep_name} of free VF {pci} not as before (up, MTU {h.rep_mtu}): {seen}"]
    return []


def userspace_vf_in_place(node: SimNode, by_name: dict[str, dict], pci: str, h: Home, held: bool) -> list[str]:
    """A VF on a userspace driver: nothing moved or changed on its side (held or free), sysfs lists
    no netdev for it, and once free its representor is as before. (Its PF-side MAC is not seen
    here: the veth PF has no VF operations, so ADD sets none; the kernel tier restores it.)"""
    found = []
    link = by_name.get(h.vf_name)
    if link is None or (link["address"], link["mtu"], "UP" in link["flags"]) != (h.mac, h.mtu, False):
        seen = link and (link["address"], link["mtu"], link["flags"])
        found.append(f"userspace VF {pci}: {h.vf_name} moved or changed (was {h.mac}/{h.mtu}, down): {seen}")
    if node.sysfs.vf_netdevs(pci):
        found.append(f"userspace VF {pci} lists netdevs {node.sysfs.vf_netdevs(pci)}")
    return found if held else found + representor_home(by_name, pci, h)


def after_gc(node: SimNode, live: set[str]) -> list[str]:
    """GC leaves no state for dead attachments: no stale port record, no port of theirs at all."""
    _, _, stale = state_owners(node.state_dir)
    found = [f"stale port record {name} left after GC" for name in stale]
    left = [f"OVS port {port} of dead {cid} left after GC" for port, (cid, _) in ports(node).items() if cid not in live]
    return found + left


def node_view(node: SimNode) -> dict:
    """Everything an attachment could leave on the node (SimNode.snapshot), with every bridge's ports
    and the names of cni-hwol's ports marked stale."""
    view = node.snapshot()
    view["ports"] = {bridge: node.ovs.ports(bridge) for bridge in node.ovs.vsctl("list-br").split()}
    view["marked stale"] = sorted(name for name, (_, marked) in ports(node).items() if marked)
    return view


def differences(before: dict, after: dict) -> list[str]:
    """What changed between two node views, one line per part that differs. Left out: stale ports
    (recorded by a DEL while OVSDB was down, or marked), which any ADD reaching OVSDB may settle and
    its own ADD replaces, and the bridges' MTU, which OVS sets from their ports'."""
    stale = {Path(p).stem for p in before["state"] if p.startswith("stale-ports/")} | set(before["marked stale"])

    def settled(view: dict) -> dict:
        state = [p for p in view["state"] if not p.startswith("stale-ports/")]
        ports = {bridge: [p for p in names if p not in stale] for bridge, names in view["ports"].items()}
        links = [(name, None if name in view["ports"] else mtu, *rest) for name, mtu, *rest in view["links"]]
        return {**view, "state": state, "ports": ports, "links": links, "marked stale": []}

    before, after = settled(before), settled(after)
    return [f"{part}: {before[part]} -> {after.get(part)}" for part in before if before[part] != after.get(part)]
