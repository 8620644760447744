"""`cni-hwol offload-status`: is each attachment's traffic in hardware?

Per attachment: pod, VF, representor, OVS port and ofport, the tc filters on
the representor and how many are in hardware, and the datapath flows of the
port split into offloaded and not (what `tc filter show` and
`ovs-appctl dpctl/dump-flows type=offloaded|ovs` tell by hand).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.ports import port_on_bridge
from cni_hwol.state import AttachmentState, StateStore
from cni_hwol.tools.report import Report


class TcFailed(Exception):
    """tc could not list the representor's filters: no answer is not "0 filters"."""


def tc_filters(rep: str) -> tuple[int, int]:
    """(filters on the representor's ingress, of which in hardware); TcFailed when tc cannot tell."""
    try:
        done = subprocess.run(
            ["tc", "-j", "filter", "show", "dev", rep, "ingress"], capture_output=True, text=True, check=False
        )
    except OSError as exc:  # no tc at all: the image ships without iproute2
        raise TcFailed(f"cannot run tc: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise TcFailed(f"tc exited {done.returncode}: {done.stderr.strip()[:200]}")
    if not done.stdout.strip():
        return 0, 0  # no ingress qdisc: no filter
    try:
        filters = [f for f in json.loads(done.stdout) if "options" in f]
        return len(filters), sum(1 for f in filters if f["options"].get("in_hw"))
    except (ValueError, TypeError, AttributeError) as exc:
        raise TcFailed(f"unexpected tc output: {exc}") from None


def vswitchd_flows(rundir: str) -> dict[str, list[str]] | None:
    """Datapath flows by kind ("offloaded", "ovs"), with port names; None when vswitchd is unreachable."""
    try:
        pid = (Path(rundir) / "ovs-vswitchd.pid").read_text().strip()
        with OvsdbClient(f"unix:{rundir}/ovs-vswitchd.{pid}.ctl", timeout=5.0) as ctl:
            return {
                kind: [
                    line
                    for line in ctl.call("dpctl/dump-flows", ["--names", f"type={kind}"]).splitlines()
                    if line.startswith("recirc_id") or "in_port(" in line
                ]
                for kind in ("offloaded", "ovs")
            }
    except (OSError, OvsdbUnavailable, OvsdbError):
        return None


def _check_port(report: Report, label: str, entry: dict, state: AttachmentState, ovsdb: OvsdbClient) -> bool:
    """The attachment's OVS port and ofport; False when OVSDB did not answer (the connection is lost)."""
    rep = state.representor
    try:
        port, held = port_on_bridge(ovsdb, state.bridge, rep)
        rows = ovsdb.transact(
            {"op": "select", "table": "Interface", "where": [["name", "==", rep]], "columns": ["ofport"]}
        )[0]["rows"]
    except (OvsdbUnavailable, OvsdbError) as exc:
        report.add(f"{label}: OVS port", False, f"cannot read OVSDB: {exc}", "check ovsdb-server, then run again")
        return False
    entry["ofport"] = rows[0]["ofport"] if rows else None
    report.add(
        f"{label}: OVS port",
        bool(port and held),
        f"{rep} on {state.bridge}, ofport {entry['ofport']}" if held else f"{rep} not on {state.bridge}",
        "cnitool check, or delete and re-create the pod",
    )
    return True


def _attachment(
    report: Report, state: AttachmentState, ovsdb: OvsdbClient | None, flows: dict[str, list[str]] | None
) -> tuple[dict, bool]:
    """The attachment's entry, and whether the OVSDB connection is still usable."""
    rep = state.representor
    pod = f"{state.pod_args.get('K8S_POD_NAMESPACE', '?')}/{state.pod_args.get('K8S_POD_NAME', '?')}"
    entry: dict = {
        "container_id": state.container_id,
        "ifname": state.ifname,
        "pod": pod,
        "vf": state.device_id,
        "representor": rep,
        "bridge": state.bridge,
    }
    label = f"{pod} ({state.container_id[:12]}/{state.ifname})"
    ovsdb_usable = ovsdb is not None and _check_port(report, label, entry, state, ovsdb)
    try:
        total, in_hw = tc_filters(rep)
    except TcFailed as exc:
        entry["tc_filters"] = entry["tc_in_hw"] = None
        report.add(f"{label}: tc filters in hardware", False, str(exc), "install iproute2 (tc) and run again")
    else:
        entry["tc_filters"], entry["tc_in_hw"] = total, in_hw
        report.add(
            f"{label}: tc filters in hardware",
            in_hw == total,
            f"{in_hw}/{total} on {rep} ingress",
            "see docs/troubleshooting.md: hw-tc-offload, OVS hw-offload, unsupported actions",
        )
    if flows is not None:
        mine = re.compile(rf"in_port\({re.escape(rep)}\)")
        entry["flows_offloaded"] = [f for f in flows["offloaded"] if mine.search(f)]
        entry["flows_software"] = [f for f in flows["ovs"] if mine.search(f)]
        offloaded, software = len(entry["flows_offloaded"]), len(entry["flows_software"])
        report.add(
            f"{label}: datapath flows offloaded",
            software == 0,
            f"{offloaded} offloaded, {software} in software",
            "ovs-appctl dpctl/dump-flows type=ovs shows which flows stayed in software and their actions",
        )
    return entry, ovsdb_usable


def offload_status(state_dir: str, ovsdb: str, rundir: str, container_id: str | None) -> Report:
    report = Report("offload-status")
    attachments = [
        s
        for s in StateStore(state_dir).all_attachments()
        if container_id is None or s.container_id.startswith(container_id)
    ]
    report.add(
        "attachments",
        bool(attachments),
        f"{len(attachments)} in {state_dir}" + (f" for {container_id}" if container_id else ""),
        "no pod uses cni-hwol here (or pass the right --state-dir)",
    )
    flows = vswitchd_flows(rundir)
    report.add(
        "ovs-vswitchd reachable",
        flows is not None,
        f"{rundir}/ovs-vswitchd.<pid>.ctl",
        "start ovs-vswitchd, or pass --ovs-rundir",
    )
    try:
        client: OvsdbClient | None = OvsdbClient(ovsdb, timeout=5.0)
    except OvsdbUnavailable as exc:
        report.add("OVS reachable", False, str(exc), "start Open vSwitch, or pass --ovsdb")
        client = None
    entries = []
    try:
        for state in attachments:
            entry, ovsdb_usable = _attachment(report, state, client, flows)
            entries.append(entry)
            if client is not None and not ovsdb_usable:
                client.close()  # the connection is lost: the next attachments go without OVSDB
                client = None
    finally:
        if client is not None:
            client.close()
    report.data["attachments"] = entries
    return report
