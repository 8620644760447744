"""The shipped tree on a node older than its build: Debian 11 (glibc 2.31) runs it.

The tree carries the build's glibc and loader (packaging/cni-hwol.spec) and its front execs
cni-hwol-py through them. Here the installed tree runs VERSION, ADD, CHECK and DEL from inside a
Debian 11 root (mmdebstrap bullseye, with bullseye's own host-local) against the simulated node,
whose /proc, /sys, /run/netns and work directory (state, OVSDB socket, sysfs tree) are bind-mounted
in. The IPAM plugin is a script of the old root that records what it inherits and the plugin's
own mappings (it is the plugin's child): no library of the node's glibc is mapped in the plugin,
and the script (the node's shell, the node's host-local) gets no library path into the tree.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

from tests.image import built_tree, debian_root, require
from tests.simnode.nsexec import run

# Bullseye's host-local speaks CNI 0.4.0 at most.
CNI_VERSION = "0.4.0"
OLD_GLIBC_IPAM = """#!/bin/sh
# The IPAM plugin as the old node runs it: records its environment and its parent's (the
# plugin's) mappings, then hands the verb to the old root's host-local.
env > "$RECORD_DIR/env.$CNI_COMMAND"
cat /proc/$PPID/maps > "$RECORD_DIR/plugin-maps.$CNI_COMMAND"
exec /usr/lib/cni/host-local
"""


def run_in_root(root: Path, node, front: Path, verb: str, conf: dict, pod) -> tuple[int, dict | None, str]:
    """Exec the front inside root, in the node's network namespace and a mount namespace of its own."""
    binds = ["/proc", "/sys", "/run/netns", str(node.workdir)]
    script = "set -e\n"
    for path in binds:
        script += f"mkdir -p {shlex.quote(str(root) + path)}\nmount --rbind {shlex.quote(path)} "
        script += f"{shlex.quote(str(root) + path)}\n"
    script += f"exec chroot {shlex.quote(str(root))} {shlex.quote(str(front))}\n"
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": verb,
        "CNI_PATH": f"{front.parent}:/usr/lib/cni",
        "CNI_CONTAINERID": pod.container_id,
        "CNI_NETNS": pod.netns,
        "CNI_IFNAME": "net1",
        "CNI_ARGS": node.cni_args(pod),
        "RECORD_DIR": str(node.workdir / "records"),  # for OLD_GLIBC_IPAM, which the plugin passes it to
        **node.plugin_env(),
    }
    done = run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        netns=node.netns,
        env=env,
        input=json.dumps(conf).encode(),
        check=False,
    )
    node.sync_sysfs()
    out = done.stdout.decode()
    return done.returncode, json.loads(out) if out.strip() else None, done.stderr.decode()


def test_the_installed_tree_runs_every_verb_on_debian_11(node, tmp_path):
    require("mmdebstrap", "unshare", "chroot")
    tree = built_tree()
    root = debian_root("bullseye", ["containernetworking-plugins"])
    libc = subprocess.run(["chroot", str(root), "ldd", "--version"], capture_output=True, text=True, check=True)
    assert "2.31" in libc.stdout.splitlines()[0]

    cni_bin = node.workdir / "opt-cni-bin"  # the host's /opt/cni/bin
    cni_bin.mkdir()
    subprocess.run([str(tree / "cni-hwol"), "install", "--dest", str(cni_bin)], check=True, capture_output=True)
    front = cni_bin / "cni-hwol"
    records = node.workdir / "records"
    records.mkdir()
    ipam = cni_bin / "old-glibc-ipam"
    ipam.write_text(OLD_GLIBC_IPAM)
    ipam.chmod(ipam.stat().st_mode | stat.S_IXUSR)

    pod = node.create_pod("old-glibc")
    vf = node.vf(0, 1)
    conf = {
        **node.netconf(cni_version=CNI_VERSION),
        "deviceID": vf.pci,
        "ipam": {"type": "old-glibc-ipam", "subnet": node.subnet, "dataDir": str(node.ipam_dir)},
    }
    before = node.snapshot()

    status, version, stderr = run_in_root(root, node, front, "VERSION", conf, pod)
    assert status == 0, stderr
    assert CNI_VERSION in version["supportedVersions"]

    status, result, stderr = run_in_root(root, node, front, "ADD", conf, pod)
    assert status == 0, f"{result} {stderr}"
    address = result["ips"][0]["address"]
    in_pod = next(i for i in result["interfaces"] if i.get("sandbox") == pod.netns)
    pod_link = node.pod_link(pod)
    assert pod_link is not None and pod_link["address"] == in_pod["mac"]
    assert address.split("/")[0] in node.pod_sh(pod, "ip -4 addr show net1")

    status, body, stderr = run_in_root(root, node, front, "CHECK", {**conf, "prevResult": result}, pod)
    assert status == 0, f"{body} {stderr}"
    status, body, stderr = run_in_root(root, node, front, "DEL", conf, pod)
    assert status == 0, f"{body} {stderr}"
    assert node.snapshot() == before

    for verb in ("ADD", "DEL"):
        maps = (records / f"plugin-maps.{verb}").read_text()
        mapped = {line.split()[-1] for line in maps.splitlines() if line.split()[-1].startswith("/")}
        glibc = [path for path in mapped if os.path.basename(path).startswith(("libc.", "libc-", "ld-"))]
        assert glibc and all(path.startswith(str(cni_bin / "cni-hwol.d")) for path in glibc), glibc
        library_paths = [line for line in (records / f"env.{verb}").read_text().splitlines() if line.startswith("LD_")]
        assert library_paths == []


# glibc's own libraries: one of them loaded from the node beside the tree's libc would not match it.
GLIBC_LIBRARIES = re.compile(
    r"^(ld-linux[-\w.]*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libanl|libnsl|libmvec|libnss_\w+)\.so\b"
)


def elf_needed(path: Path) -> list[str] | None:
    """The DT_NEEDED names of an ELF file (readelf), None when path is not one."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
    dynamic = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)


def test_every_glibc_library_the_tree_needs_is_in_the_tree():
    require("readelf")
    tree = built_tree()
    bundled = {p.name for p in (tree / "_internal").iterdir()}
    needed = {}
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink() and (names := elf_needed(path)):
            for name in names:
                if GLIBC_LIBRARIES.match(name):
                    needed.setdefault(name, []).append(str(path.relative_to(tree)))
    assert "libc.so.6" in needed  # the scan sees the tree's libraries
    assert {name: users for name, users in needed.items() if name not in bundled} == {}
