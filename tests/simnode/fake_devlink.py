"""A devlink for tests, handed to cni-hwol through cni_hwol.hw.devlink.use_devlink_source.

The simulated node's kernel has no devlink (and a host that has one answers for its
own NICs), so a test says what devlink holds: absent, or a port table and each
instance's eswitch mode, and whether switching the mode is refused.

`python3 -m tests.simnode.fake_devlink SPEC.json ARGS...` runs the cni-hwol
executable's main with this devlink (the operator tools' end-to-end tests).
"""

from __future__ import annotations

import errno
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cni_hwol.hw.devlink import FLAVOUR_PCI_VF, DevlinkPort, use_devlink_source
from cni_hwol.linux.nlsock import NetlinkError

FLAVOUR_PHYSICAL = 0


@dataclass
class FakeDevlink:
    port_table: list[DevlinkPort] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)  # devlink handle -> "legacy" | "switchdev"
    absent: bool = False
    refuse_set: bool = False  # set_eswitch_mode fails as a firmware would (EOPNOTSUPP)

    def ports(self) -> list[DevlinkPort]:
        return [] if self.absent else list(self.port_table)

    def eswitch_mode(self, handle: str) -> str | None:
        return None if self.absent else self.modes.get(handle)

    def set_eswitch_mode(self, handle: str, mode: str) -> None:
        if self.absent or self.refuse_set:
            raise NetlinkError(errno.EOPNOTSUPP)
        self.modes[handle] = mode

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeDevlink:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    # -- as a file, for a tool run in another process ------------------------------------
    def write(self, path: Path) -> Path:
        spec = {**asdict(self), "port_table": [asdict(p) for p in self.port_table]}
        path.write_text(json.dumps(spec))
        return path

    @classmethod
    def read(cls, path: str) -> FakeDevlink:
        spec = json.loads(Path(path).read_text())
        return cls(**{**spec, "port_table": [DevlinkPort(**p) for p in spec["port_table"]]})


def node_devlink(node, mode: str = "switchdev", **options) -> FakeDevlink:
    """The devlink a switchdev NIC would show for a simulated node: per PF (pci/<PF>) its
    physical port and a pcivf port per VF whose netdev is the representor."""
    ports = []
    for pf in range(node.pf_count):
        handle = f"pci/{node.pf_address(pf)}"
        ports.append(DevlinkPort(handle, 65535, FLAVOUR_PHYSICAL, pf, None, f"enp3s0f{pf}np{pf}"))
        for vf in (v for v in node.vfs if v.pf_index == pf):
            ports.append(DevlinkPort(handle, 1 + vf.vf_index, FLAVOUR_PCI_VF, pf, vf.vf_index, vf.rep_name))
    modes = {f"pci/{node.pf_address(pf)}": mode for pf in range(node.pf_count)}
    return FakeDevlink(ports, modes, **options)


def main(argv: list[str]) -> int:
    fake = FakeDevlink.read(argv[0])
    use_devlink_source(lambda: fake)
    from cni_hwol.main import main as cni_hwol_main

    return cni_hwol_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
