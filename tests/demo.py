"""The live demonstration: cni-hwol wiring two pods on a simulated SR-IOV switchdev node.

Run as root after .ci/setup:  python3 -m tests.demo
"""

from __future__ import annotations

import json
import sys

from tests.conftest import e2e_missing
from tests.simnode import SimNode

# As kubernetes.io/ingress-bandwidth and egress-bandwidth annotations set it. Also
# needed because Debian's bandwidth 1.1.1 crashes on CHECK when it has no limit.
BANDWIDTH = {
    "bandwidth": {
        "ingressRate": 2_000_000_000,
        "ingressBurst": 50_000_000,
        "egressRate": 2_000_000_000,
        "egressBurst": 50_000_000,
    }
}


def say(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def show(text: str) -> None:
    print("    " + text.rstrip().replace("\n", "\n    "), flush=True)


def main() -> int:
    reason = e2e_missing()
    if reason:
        print(f"demo cannot run: {reason}", file=sys.stderr)
        return 1
    with SimNode(pfs=2, vfs_per_pf=4) as node:
        say(f"Simulated node {node.ns_name}: 2 PFs in switchdev mode, 4 VFs each, OVS br-int (userspace datapath)")
        for vf in (node.vf(0, 1), node.vf(1, 1)):
            show(
                f"VF {vf.pci}  PF {node.pf_address(vf.pf_index)}  vf {vf.vf_index}  netdev {vf.vf_name}  "
                f"representor {vf.rep_name}"
            )
        before = node.snapshot()
        conflist = node.netconf_dir / "hwol.conflist"
        say(f"NetworkAttachmentDefinition as a conflist ({conflist}): cni-hwol, portmap, bandwidth")
        show(conflist.read_text())

        pods = []
        for name, vf in (("pod1", node.vf(0, 1)), ("pod2", node.vf(1, 1))):
            pod = node.create_pod(name)
            say(f"cnitool add hwol {pod.netns}   (deviceID {vf.pci}, as Multus passes it)")
            result = json.loads(node.cnitool_run("add", pod, vf.pci, cap_args=BANDWIDTH).stdout)
            show(json.dumps(result, indent=1))
            pods.append((pod, vf, result["ips"][0]["address"].split("/")[0]))

        say("OVS: the representors are ports of br-int, claimed by their pods")
        for _, vf, _ in pods:
            ids = node.ovs.column("Interface", vf.rep_name, "external_ids")
            show(f"{vf.rep_name}: " + ", ".join(f"{k}={v}" for k, v in sorted(ids.items())))

        (pod1, _, ip1), (pod2, _, ip2) = pods
        say(f"ping {ip2} from pod1 (VF of PF0 -> representor -> br-int -> representor -> VF of PF1)")
        show(node.ping(pod1, ip2).stdout.decode())

        say("iperf3 pod1 -> pod2 for 2 s (TCP over the userspace datapath; a NIC would offload it)")
        for pod, _, _ in pods:
            node.disable_tx_offload(pod)
        node.pod_sh(pod2, "iperf3 -s -D -1")  # daemon, exits after one client
        show(node.pod_sh(pod1, f"iperf3 -c {ip2} -t 2 -f m", check=False).splitlines()[-3])

        say("cnitool check, then del, for both pods")
        for pod, vf, _ in pods:
            node.cnitool_run("check", pod, vf.pci, cap_args=BANDWIDTH)
            node.cnitool_run("del", pod, cap_args=BANDWIDTH)
            show(f"{pod.name}: CHECK ok, DEL ok; VF {vf.pci} is {node.sysfs.vf_netdevs(vf.pci)[0]} on the node again")
        restored = node.snapshot() == before
        say(
            "Node after DEL: "
            + (
                "exactly as before (links, addresses, OVS ports, leases, state)"
                if restored
                else "DIFFERENT from before"
            )
        )
        return 0 if restored else 1


if __name__ == "__main__":
    raise SystemExit(main())
