"""The state store: permissions, atomic writes, path containment, device claims."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from cni_hwol.cni.errors import CNIError
from cni_hwol.state import AttachmentKey, AttachmentState, StateStore


def make_state(**overrides) -> AttachmentState:
    base = dict(
        network="hwol",
        container_id="c1",
        ifname="net1",
        netns="/n",
        device_id="0000:04:00.1",
        pf_device_id="0000:03:00.0",
        vf_index=1,
        vf_name="v1",
        vf_mac="02:00:00:00:00:01",
        vf_mtu=1500,
        representor="rep1",
        representor_mtu=1500,
        representor_was_up=False,
        representor_ipv6_disabled="0",
        bridge="br-int",
        ovsdb_socket="unix:/x",
    )
    return AttachmentState(**{**base, **overrides})


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_are_0600_in_0700_directories(tmp_path):
    store = StateStore(str(tmp_path / "state"))
    state = make_state()
    store.save(state)
    store.claim_device(state.device_id, state.key)
    with store.lock_attachment(state.key), store.lock_device(state.device_id):
        pass
    for path in (tmp_path / "state").rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_round_trip_and_removal(tmp_path):
    store = StateStore(str(tmp_path))
    state = make_state(port_uuid="u1", result={"cniVersion": "1.0.0"})
    store.save(state)
    assert store.load(state.key) == state
    assert store.all_attachments() == [state]
    store.remove(state.key)
    assert store.load(state.key) is None


def test_no_temp_files_are_left_behind(tmp_path):
    store = StateStore(str(tmp_path))
    for n in range(5):
        store.save(make_state(vf_index=n))
    assert [p.name for p in (tmp_path / "attachments/hwol").iterdir()] == ["c1:net1.json"]


def test_keys_that_would_escape_the_directory_are_refused(tmp_path):
    store = StateStore(str(tmp_path))
    with pytest.raises(CNIError):
        store.load(AttachmentKey("../../etc", "c1", "net1"))


def test_device_claims_protect_a_vf_for_its_holder_only(tmp_path):
    store = StateStore(str(tmp_path))
    a, b = AttachmentKey("hwol", "a", "net1"), AttachmentKey("hwol", "b", "net1")
    store.claim_device("0000:04:00.1", a)
    assert store.device_holder("0000:04:00.1") == a
    store.release_device("0000:04:00.1", b)  # not b's to release
    assert store.device_holder("0000:04:00.1") == a
    store.release_device("0000:04:00.1", a)
    assert store.device_holder("0000:04:00.1") is None


def test_attachment_locks_are_bounded_in_number(tmp_path):
    store = StateStore(str(tmp_path))
    for n in range(3000):
        with store.lock_attachment(AttachmentKey("hwol", f"c{n}", "net1")):
            pass
    assert len(list((tmp_path / "locks").iterdir())) <= 1024


# Another process asks for the same lock and gives up at once (code 11 when held).
TRY_LOCK = """
import sys
from cni_hwol import state
from cni_hwol.cni.errors import CNIError
state.LOCK_TIMEOUT_SECONDS = 0
store, (kind, *what) = state.StateStore(sys.argv[1]), sys.argv[2:]
lock = store.lock_device(*what) if kind == "vf" else store.lock_attachment(state.AttachmentKey(*what))
try:
    with lock:
        print("taken")
except CNIError as exc:
    print(exc.code, exc.msg)
"""


@pytest.mark.parametrize("what", [("vf", "0000:04:00.1"), ("attachment", "hwol", "c1", "net1")], ids=lambda w: w[0])
def test_a_lock_held_by_one_process_is_refused_to_another(tmp_path, what):
    """The per-VF and per-attachment flocks exclude every other invocation; one held
    past the timeout is code 11 naming it (here a timeout of 0 instead of 60 s)."""
    store = StateStore(str(tmp_path))
    kind, *args = what

    def other_process() -> str:
        argv = [sys.executable, "-c", TRY_LOCK, str(tmp_path), *what]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    with store.lock_device(*args) if kind == "vf" else store.lock_attachment(AttachmentKey(*args)):
        refusal = other_process()
        assert refusal.startswith("11 ") and "is busy" in refusal
    assert other_process() == "taken\n"


def test_no_shell_anywhere_in_the_plugin():
    source = Path(__file__).resolve().parents[2] / "cni_hwol"
    for path in source.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("shell=True", "os.system(", "os.popen(", " eval(", " exec("):
            assert forbidden not in text, f"{forbidden} in {path}"


def test_attachment_names_are_unambiguous(tmp_path):
    store = StateStore(str(tmp_path))
    one = make_state(container_id="a--b", ifname="c", device_id="0000:04:00.1")
    other = make_state(container_id="a", ifname="b--c", device_id="0000:04:00.2")
    store.save(one)
    store.save(other)
    assert store.load(one.key) == one
    assert store.load(other.key) == other
    store.remove(one.key)
    assert store.load(other.key) == other
    assert store.all_attachments() == [other]


def test_state_files_named_by_an_older_release_are_still_found(tmp_path):
    store = StateStore(str(tmp_path))
    legacy = make_state(container_id="a", ifname="b--c")
    (tmp_path / "attachments/hwol").mkdir(parents=True)
    legacy_path = tmp_path / "attachments/hwol/a--b--c.json"
    legacy_path.write_text(json.dumps(asdict(legacy)))
    assert store.load(legacy.key) == legacy
    assert store.load(AttachmentKey("hwol", "a--b", "c")) is None  # the same old name, not this attachment's
    assert store.all_attachments() == [legacy]
    store.save(legacy)  # rewritten under the new name: still one file
    assert [p.name for p in (tmp_path / "attachments/hwol").iterdir()] == ["a:b--c.json"]
    legacy_path.write_text(json.dumps(asdict(legacy)))
    store.remove(legacy.key)
    assert not list((tmp_path / "attachments/hwol").iterdir())
    assert store.load(legacy.key) is None


def test_a_format_2_file_without_userspace_driver_reads_as_a_kernel_vf(tmp_path):
    store = StateStore(str(tmp_path))
    state = make_state(userspace_driver="vfio-pci")
    store.save(state)
    assert store.load(state.key).userspace_driver == "vfio-pci"
    path = next((tmp_path / "attachments").rglob("*.json"))
    body = json.loads(path.read_text())
    del body["userspace_driver"]  # written before VFs on userspace drivers were attached
    assert body["format"] == 2
    path.write_text(json.dumps(body))
    assert store.load(state.key).userspace_driver == ""
