"""cni-hwol: a CNI meta-plugin for hardware-offloaded OVS on SR-IOV switchdev NICs."""

__version__ = "0.1.0"
