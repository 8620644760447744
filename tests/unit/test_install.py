"""The DaemonSet installer against temp directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cni_hwol.install import InstallError, install, installed_version, main, uninstall


def build(tmp_path: Path, name: str, marker: str) -> Path:
    source = tmp_path / name
    (source / "_internal").mkdir(parents=True, exist_ok=True)
    for name in ("cni-hwol", "cni-hwol-py"):
        exe = source / name
        exe.write_text(f"#!/bin/sh\necho {marker}\n")
        exe.chmod(0o755)
    (source / "_internal" / "lib.so").write_text(marker)
    return source


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "opt-cni-bin"
    d.mkdir()
    return d


def test_fresh_install_links_the_executable(tmp_path, dest):
    message = install(build(tmp_path, "b1", "v1"), dest, "1.0.0")
    assert "installed cni-hwol 1.0.0" in message
    assert os.readlink(dest / "cni-hwol") == "cni-hwol.d/1.0.0/cni-hwol"
    assert (dest / "cni-hwol").resolve().read_text().endswith("echo v1\n")
    assert stat.S_IMODE(os.stat(dest / "cni-hwol").st_mode) == 0o755
    assert installed_version(dest) == "1.0.0"


def test_same_version_again_is_a_no_op(tmp_path, dest):
    install(build(tmp_path, "b1", "v1"), dest, "1.0.0")
    assert "already installed" in install(build(tmp_path, "b2", "v1"), dest, "1.0.0")


def test_upgrade_swaps_the_link_and_keeps_the_previous_tree(tmp_path, dest):
    install(build(tmp_path, "b1", "v1"), dest, "1.0.0")
    message = install(build(tmp_path, "b2", "v2"), dest, "1.1.0")
    assert "(was 1.0.0)" in message
    assert installed_version(dest) == "1.1.0"
    assert sorted(p.name for p in (dest / "cni-hwol.d").iterdir()) == ["1.0.0", "1.1.0"]
    install(build(tmp_path, "b3", "v3"), dest, "1.2.0")
    assert sorted(p.name for p in (dest / "cni-hwol.d").iterdir()) == ["1.1.0", "1.2.0"]


def test_downgrade_is_refused_unless_allowed(tmp_path, dest):
    install(build(tmp_path, "b2", "v2"), dest, "2.0.0")
    with pytest.raises(InstallError, match="refusing to downgrade"):
        install(build(tmp_path, "b1", "v1"), dest, "1.9.9")
    assert installed_version(dest) == "2.0.0"
    install(build(tmp_path, "b1", "v1"), dest, "1.9.9", allow_downgrade=True)
    assert installed_version(dest) == "1.9.9"


def test_leftover_staging_from_a_killed_installer_is_cleaned(tmp_path, dest):
    (dest / "cni-hwol.d" / ".1.0.0.999.tmp").mkdir(parents=True)
    install(build(tmp_path, "b1", "v1"), dest, "1.0.0")
    assert [p.name for p in (dest / "cni-hwol.d").iterdir()] == ["1.0.0"]
    assert not any(p.name.startswith(".") for p in dest.iterdir())


def test_a_foreign_file_named_cni_hwol_is_replaced_atomically(tmp_path, dest):
    (dest / "cni-hwol").write_text("old single-file install")
    install(build(tmp_path, "b1", "v1"), dest, "1.0.0")
    assert installed_version(dest) == "1.0.0"


def test_missing_destination_or_source(tmp_path, dest):
    with pytest.raises(InstallError, match="does not exist"):
        install(build(tmp_path, "b1", "v1"), tmp_path / "nope", "1.0.0")
    with pytest.raises(InstallError, match="no executable cni-hwol$"):
        install(tmp_path, dest, "1.0.0")
    front_only = build(tmp_path, "b2", "v2")
    (front_only / "cni-hwol-py").unlink()
    with pytest.raises(InstallError, match="no executable cni-hwol-py"):
        install(front_only, dest, "1.0.0")


def test_uninstall(tmp_path, dest):
    install(build(tmp_path, "b1", "v1"), dest, "1.0.0")
    assert "removed" in uninstall(dest)
    assert list(dest.iterdir()) == []
    assert "nothing removed" in uninstall(dest)


def test_command_line(tmp_path, dest, capsys):
    assert main(["--source", str(build(tmp_path, "b1", "v1")), "--dest", str(dest)]) == 0
    assert main(["--source", str(tmp_path / "missing"), "--dest", str(dest)]) == 1
    assert "no executable" in capsys.readouterr().err
