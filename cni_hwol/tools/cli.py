"""Command line of the operator tools: doctor, node-setup, offload-status."""

from __future__ import annotations

import argparse
import os
import sys

from cni_hwol.cni.errors import CNIError
from cni_hwol.cni.netconf import (
    DEFAULT_BRIDGE,
    DEFAULT_OVSDB_SOCKET,
    DEFAULT_STATE_DIR,
    DEFAULT_SYSFS_ROOT,
    validate_ovsdb_socket,
)
from cni_hwol.nodeconf import read_node_policy


def ovsdb_target(value: str) -> str:
    """--ovsdb: the same forms as the netconf's ovsdbSocket."""
    try:
        return validate_ovsdb_socket(value)
    except CNIError as exc:
        raise argparse.ArgumentTypeError(exc.msg) from None


def vf_count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of VFs (0 or more)")
    return int(value)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sysfs-root", default=DEFAULT_SYSFS_ROOT, help="where sysfs is mounted (default /sys)")
    parser.add_argument(
        "--ovsdb", default=DEFAULT_OVSDB_SOCKET, type=ovsdb_target, help="OVSDB server: unix:/path or tcp:host:port"
    )
    parser.add_argument("--bridge", default=DEFAULT_BRIDGE, help="the OVS bridge pods join")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the plugin's stateDir")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    # With a node file the tools look where the plugin does: its settings are the defaults.
    policy = read_node_policy(os.environ)
    if policy is not None:
        node = policy.node
        parser.set_defaults(
            sysfs_root=node.sysfs_root, ovsdb=node.ovsdb_socket, bridge=node.bridge, state_dir=node.state_dir
        )


def main(command: str, argv: list[str]) -> int:
    try:
        return _run(command, argv)
    except Exception as exc:  # noqa: BLE001 - an operator gets one line, never a traceback
        print(f"cni-hwol {command}: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _run(command: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"cni-hwol {command}")
    try:
        _common(parser)
    except CNIError as exc:  # the plugin refuses every verb on this node: say so first
        print(f"cni-hwol {command}: {exc}", file=sys.stderr)
        return 1
    if command == "doctor":
        parser.add_argument("--pf", help="check one PF netdev (default: every SR-IOV PF)")
        parser.add_argument("--cni-path", default="/opt/cni/bin", help="colon-separated CNI plugin directories")
        args = parser.parse_args(argv)
        from cni_hwol.tools.doctor import doctor

        report = doctor(
            args.sysfs_root,
            args.ovsdb,
            args.bridge,
            args.state_dir,
            [d for d in args.cni_path.split(":") if d],
            args.pf,
        )
    elif command == "node-setup":
        parser.add_argument("--pf", required=True, help="the PF netdev, e.g. enp3s0f0")
        parser.add_argument("--vfs", required=True, type=vf_count, help="how many VFs to create")
        parser.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
        args = parser.parse_args(argv)
        from cni_hwol.tools.node_setup import node_setup

        report = node_setup(args.sysfs_root, args.pf, args.vfs, args.state_dir, args.dry_run)
    else:
        parser.add_argument("container_id", nargs="?", help="one attachment's container id (or a prefix)")
        parser.add_argument("--all", action="store_true", help="every attachment (the default)")
        parser.add_argument("--ovs-rundir", default="/var/run/openvswitch", help="where ovs-vswitchd's .ctl is")
        args = parser.parse_args(argv)
        from cni_hwol.tools.offload_status import offload_status

        report = offload_status(args.state_dir, args.ovsdb, args.ovs_rundir, None if args.all else args.container_id)
    print(report.render(args.json))
    return 0 if report.ok else 1
