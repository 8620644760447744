"""A simulated SR-IOV switchdev node for the demo, the tests and the benchmarks.

What this machine has is real: network namespaces, veth pairs standing in for
VF/representor pairs, a veth end as the PF netdev, OVS from Debian with the
userspace datapath, Debian's CNI plugins, a libcni client. What it cannot have
is faked: the NIC's PCI sysfs tree (written under a temp sysfsRoot). Where a
veth differs from a VF (namespace teardown) the node acts out the kernel.
"""

from tests.simnode.node import Pod, SimNode, VfPair

__all__ = ["Pod", "SimNode", "VfPair"]
