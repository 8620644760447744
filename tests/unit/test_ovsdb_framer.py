"""The OVSDB client's stream framing: JSON texts back to back, split anywhere by the socket."""

from __future__ import annotations

import json

import pytest

from cni_hwol.ovsdb.client import MessageFramer, OvsdbClient, OvsdbUnavailable

MESSAGES = [
    {"id": 1, "result": [{"rows": [{"name": "pod-é€", "tricky": 'a "quoted" \\ {not} [nested]\\'}]}]},
    {"method": "echo", "params": [], "id": "echo"},
    {"id": 2, "result": [{"count": 1}], "note": "😀" * 3},
]
STREAM = "\n".join(json.dumps(m, ensure_ascii=False) for m in MESSAGES).encode()


def test_every_split_of_the_stream_yields_the_same_messages():
    # Every cut, including inside multi-byte characters (é is 2 bytes, € 3, 😀 4)
    # and right after a backslash inside a string.
    for cut in range(len(STREAM) + 1):
        framer = MessageFramer()
        texts = framer.feed(STREAM[:cut]) + framer.feed(STREAM[cut:])
        assert [json.loads(t) for t in texts] == MESSAGES, cut


def test_byte_at_a_time():
    framer = MessageFramer()
    texts = [t for i in range(len(STREAM)) for t in framer.feed(STREAM[i : i + 1])]
    assert [json.loads(t) for t in texts] == MESSAGES


def test_a_message_is_handed_out_only_once_complete():
    framer = MessageFramer()
    head, tail = json.dumps(MESSAGES[0]).encode().split(b"[nested]")
    assert framer.feed(head) == []
    assert [json.loads(t) for t in framer.feed(b"[nested]" + tail)] == [MESSAGES[0]]


@pytest.mark.parametrize("target", ["tcp:host:abc", "tcp:host", "tcp:127.0.0.1:70000", "ssl:host:6640"])
def test_a_malformed_target_is_unavailable_not_a_crash(target):
    with pytest.raises(OvsdbUnavailable, match="tcp:host:port"):
        OvsdbClient(target, timeout=1.0)
