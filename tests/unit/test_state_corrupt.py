"""State files that are not an attachment's record: a clean error for one, skipped in a scan."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from cni_hwol.cni.errors import IO_FAILURE, CNIError
from cni_hwol.state import AttachmentKey, StateStore
from tests.unit.test_state import make_state

CORRUPT_BODIES = {
    "[]": "holds [], not a JSON object",
    "null": "holds null, not a JSON object",
    '"text"': 'holds "text", not a JSON object',
    "{}": "missing network",
    '{"network": "hwol"': "not JSON",
}


@pytest.mark.parametrize("body", CORRUPT_BODIES)
def test_a_corrupt_state_file_is_an_io_failure_naming_it(tmp_path, body):
    store = StateStore(str(tmp_path))
    state = make_state()
    store.save(state)
    path = next((tmp_path / "attachments").rglob("*.json"))
    path.write_text(body)
    with pytest.raises(CNIError) as raised:
        store.load(state.key)
    assert raised.value.code == IO_FAILURE and str(path) in raised.value.msg
    assert CORRUPT_BODIES[body] in raised.value.details


def test_a_scan_skips_corrupt_files_and_names_them(tmp_path):
    store = StateStore(str(tmp_path))
    good = make_state(container_id="good")
    store.save(good)
    directory = next((tmp_path / "attachments").rglob("*.json")).parent
    for number, body in enumerate(CORRUPT_BODIES):
        (directory / f"bad{number}--net1.json").write_text(body)
    unreadable: list[str] = []
    assert store.all_attachments(unreadable) == [good]
    assert len(unreadable) == len(CORRUPT_BODIES)
    assert store.all_attachments() == [good]
    # Unknown keys (a newer format's) are not corruption.
    path = next(p for p in directory.glob("*.json") if "good" in p.name)
    path.write_text(json.dumps({**asdict(good), "added_later": 1}))
    assert store.load(AttachmentKey(good.network, "good", good.ifname)) == good
