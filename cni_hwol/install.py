"""Install the cni-hwol executable into a CNI bin directory, atomically.

Used by the DaemonSet's init container (`cni-hwol install --dest /host/opt/cni/bin`).
Layout in the CNI bin directory:

    cni-hwol                       symlink -> cni-hwol.d/<version>/cni-hwol
    cni-hwol.d/<version>/cni-hwol  the static front kubelet execs (cni_hwol/executor/shim.c)
    cni-hwol.d/<version>/...       beside it the one-directory PyInstaller build (cni-hwol-py)

The tree is copied under a temporary name and renamed into place, then the
symlink is swapped with rename(2): kubelet only ever execs a complete tree. A
newer installed version is never replaced unless downgrades are allowed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from cni_hwol import __version__
from cni_hwol.cni.errors import CNIError

LINK_NAME = "cni-hwol"
PYTHON_NAME = "cni-hwol-py"  # the front execs it from its own directory
TREE_DIR = "cni-hwol.d"
KEEP_VERSIONS = 2  # the current one and the one before it (in-flight execs, rollback)


class InstallError(Exception):
    pass


def parse_version(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise InstallError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.groups())


def installed_version(dest: Path) -> str | None:
    """The version the symlink points at; None when cni-hwol is not installed (or not by us)."""
    link = dest / LINK_NAME
    if not link.is_symlink():
        return None
    parts = Path(os.readlink(link)).parts
    if len(parts) == 3 and parts[0] == TREE_DIR and parts[2] == LINK_NAME:
        return parts[1]
    return None


def install(source: Path, dest: Path, version: str = __version__, allow_downgrade: bool = False) -> str:
    """Install the build in `source` (a directory holding the cni-hwol executable); answers what it did."""
    for name in (LINK_NAME, PYTHON_NAME):
        if not (source / name).is_file() or not os.access(source / name, os.X_OK):
            raise InstallError(f"{source} holds no executable {name}")
    if not dest.is_dir():
        raise InstallError(f"CNI bin directory {dest} does not exist (is the hostPath mounted?)")
    current = installed_version(dest)
    if current is not None and parse_version(current) > parse_version(version) and not allow_downgrade:
        raise InstallError(f"{dest}/{LINK_NAME} is {current}, newer than {version}; refusing to downgrade")
    trees = dest / TREE_DIR
    trees.mkdir(mode=0o755, exist_ok=True)
    target = trees / version
    if current == version and (target / LINK_NAME).is_file():
        return f"cni-hwol {version} is already installed in {dest}"

    staging = trees / f".{version}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, symlinks=True)
    if target.exists():  # a damaged earlier copy of the same version
        shutil.rmtree(target)
    os.rename(staging, target)

    link_tmp = dest / f".{LINK_NAME}.{os.getpid()}.tmp"
    link_tmp.unlink(missing_ok=True)
    os.symlink(f"{TREE_DIR}/{version}/{LINK_NAME}", link_tmp)
    os.rename(link_tmp, dest / LINK_NAME)  # atomic: the old or the new, never neither
    _prune(trees, keep={version, current})
    return f"installed cni-hwol {version} in {dest}" + (f" (was {current})" if current else "")


def _prune(trees: Path, keep: set[str | None]) -> None:
    versions = []
    for entry in trees.iterdir():
        if entry.name.startswith("."):
            shutil.rmtree(entry, ignore_errors=True)  # staging left by a killed installer
            continue
        try:
            versions.append((parse_version(entry.name), entry))
        except InstallError:
            continue
    versions.sort(reverse=True)
    for position, (_, entry) in enumerate(versions):
        if position >= KEEP_VERSIONS and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def uninstall(dest: Path) -> str:
    link = dest / LINK_NAME
    if installed_version(dest) is None:
        return f"cni-hwol is not installed in {dest} (or not by this installer); nothing removed"
    link.unlink()
    shutil.rmtree(dest / TREE_DIR, ignore_errors=True)
    return f"removed cni-hwol from {dest}"


def own_build_dir() -> Path:
    """Where this executable's one-directory build lives."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    raise InstallError("run the installer from the PyInstaller build (or pass --source)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cni-hwol install", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default="/host/opt/cni/bin", help="the host's CNI bin directory as mounted")
    parser.add_argument("--source", help="the build to install (default: this executable's own)")
    parser.add_argument("--allow-downgrade", action="store_true", help="replace a newer installed version")
    parser.add_argument("--uninstall", action="store_true", help="remove cni-hwol from --dest")
    parser.add_argument("--node-config", help="also validate this node file and install it (docs/operators.md)")
    parser.add_argument(
        "--node-config-dest", default="/host/etc/cni/cni-hwol/node.json", help="the host's node file as mounted"
    )
    args = parser.parse_args(argv)
    try:
        if args.uninstall:
            print(uninstall(Path(args.dest)))
        else:
            if args.node_config:  # first: a plugin on the node never runs without the policy meant for it
                from cni_hwol.nodeconf import install_node_config

                print(install_node_config(Path(args.node_config), Path(args.node_config_dest)))
            source = Path(args.source) if args.source else own_build_dir()
            print(install(source, Path(args.dest), allow_downgrade=args.allow_downgrade))
    except (InstallError, OSError, CNIError) as exc:
        print(f"cni-hwol install: {exc}", file=sys.stderr)
        return 1
    return 0
