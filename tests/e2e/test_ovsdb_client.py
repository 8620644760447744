"""The OVSDB client and the vswitchd sync against a real ovsdb-server (no ovs-vswitchd:
the test plays vswitchd's part on cur_cfg)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from cni_hwol.ovsdb.client import OvsdbClient, from_ovs_map, ovs_map
from cni_hwol.ovsdb.ports import wait_for_vswitchd
from tests.conftest import _require_e2e
from tests.simnode.nsexec import run
from tests.simnode.ovs import SCHEMA, Ovs


@pytest.fixture
def ovsdb():
    """A private ovsdb-server alone, its Open_vSwitch row initialised."""
    _require_e2e()
    workdir = Path(tempfile.mkdtemp(prefix="hwol-ovsdb-"))
    ovs = Ovs(workdir, netns="")
    try:
        run(["ovsdb-tool", "create", str(workdir / "conf.db"), SCHEMA], env=ovs.env)
        ovs.start_database()
        ovs.vsctl("--no-wait", "init")
        yield ovs
    finally:
        ovs.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_reply_with_multibyte_characters_across_reads(ovsdb):
    # ~300 KB of 2-, 3- and 4-byte characters: the 64 KiB reads of the reply
    # split some of them.
    value = "é€😀" * 35000
    with OvsdbClient(ovsdb.socket) as client:
        client.transact(
            {
                "op": "mutate",
                "table": "Open_vSwitch",
                "where": [],
                "mutations": [["external_ids", "insert", ovs_map({"big": value})]],
            }
        )
        for _ in range(3):  # several replies over the same connection
            rows = client.transact({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["external_ids"]})
            assert from_ovs_map(rows[0]["rows"][0]["external_ids"])["big"] == value


def _bump_next_cfg(client: OvsdbClient) -> int:
    results = client.transact(
        {"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["next_cfg", "+=", 1]]},
        {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
    )
    return results[1]["rows"][0]["next_cfg"]


def _vswitchd_applies(ovs: Ovs, cfg: int) -> None:
    ovs.vsctl("--no-wait", "set", "Open_vSwitch", ".", f"cur_cfg={cfg}")


def test_sync_returns_when_vswitchd_skips_past_our_configuration(ovsdb):
    with OvsdbClient(ovsdb.socket) as ours, OvsdbClient(ovsdb.socket) as theirs:
        target = _bump_next_cfg(ours)

        def someone_else_bumps_and_vswitchd_catches_up() -> None:
            newest = _bump_next_cfg(theirs)  # e.g. ovs-vsctl without --no-wait, a concurrent DEL
            _vswitchd_applies(ovsdb, newest)  # vswitchd jumps straight to the newest

        other = threading.Thread(target=someone_else_bumps_and_vswitchd_catches_up)
        other.start()
        try:
            # cur_cfg goes to target + 1 and never equals target: the sync must
            # still succeed rather than wait out its timeout.
            assert wait_for_vswitchd(ours, target, timeout_ms=20_000)
        finally:
            other.join()
        assert ovsdb.column("Open_vSwitch", ".", "cur_cfg") == target + 1


def test_sync_fails_when_vswitchd_never_gets_there(ovsdb):
    with OvsdbClient(ovsdb.socket) as client:
        target = _bump_next_cfg(client)
        _vswitchd_applies(ovsdb, target - 1)  # a change, but not far enough
        assert not wait_for_vswitchd(client, target, timeout_ms=300)
        _vswitchd_applies(ovsdb, target)
        assert wait_for_vswitchd(client, target, timeout_ms=300)
