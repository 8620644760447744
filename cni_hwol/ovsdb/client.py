"""A synchronous OVSDB JSON-RPC client (RFC 7047) over unix or TCP sockets.

Only what a CNI exec needs: one connection, "transact" requests, and answers to
the server's "echo" keepalives. Messages are JSON objects back to back on the
stream, with no framing: MessageFramer finds where each one ends.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
import socket
from typing import Any

DATABASE = "Open_vSwitch"


class OvsdbUnavailable(Exception):
    """The server cannot be reached or dropped the connection."""


class OvsdbError(Exception):
    """The server refused a transaction; .error is RFC 7047's error string."""

    def __init__(self, error: str, details: str, op_index: int | None) -> None:
        super().__init__(f"{error}: {details}" if details else error)
        self.error = error
        self.details = details
        self.op_index = op_index


class MessageFramer:
    """Cuts the byte stream into complete JSON texts, reading each byte once.

    Bytes are decoded incrementally (a UTF-8 character may straddle two reads)
    and scanned only for what changes the nesting depth: brackets outside
    strings, and quotes and backslashes inside them. A text is complete when
    the depth comes back to zero; only then is it handed to json.loads.
    """

    _OUTSIDE_STRING = re.compile(r'[{}\[\]"]')
    _INSIDE_STRING = re.compile(r'["\\]')

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._pending: list[str] = []  # the current text's pieces from earlier reads
        self._depth = 0
        self._in_string = False
        self._escaped = False  # the last read ended on a backslash inside a string

    def feed(self, data: bytes) -> list[str]:
        """The texts that `data` completes, in order."""
        chunk = self._utf8.decode(data)
        texts = []
        start = pos = 0  # where the current text starts in chunk; the scan position
        if self._escaped and chunk:
            self._escaped, pos = False, 1
        while True:
            if self._in_string:
                found = self._INSIDE_STRING.search(chunk, pos)
                if found is None:
                    break
                pos = found.end()
                if found.group() == '"':
                    self._in_string = False
                elif pos == len(chunk):
                    self._escaped = True
                else:
                    pos += 1  # the escaped character
                continue
            found = self._OUTSIDE_STRING.search(chunk, pos)
            if found is None:
                break
            pos, char = found.end(), found.group()
            if char == '"':
                self._in_string = True
            elif char in "{[":
                if self._depth == 0:
                    start, self._pending = found.start(), []  # drop whitespace between texts
                self._depth += 1
            elif self._depth > 0:
                self._depth -= 1
                if self._depth == 0:
                    texts.append("".join(self._pending) + chunk[start:pos])
                    self._pending, start = [], pos
        if self._depth > 0:
            self._pending.append(chunk[start:])
        return texts


def _connect(target: str, timeout: float) -> socket.socket:
    kind, _, rest = target.partition(":")
    try:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(rest)
        elif kind == "tcp":
            host, _, port = rest.rpartition(":")
            if not (host and port.isdigit() and 0 < int(port) < 65536):
                raise OvsdbUnavailable(f"OVSDB target {target!r} is not tcp:host:port")
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        else:
            raise OvsdbUnavailable(f"unsupported OVSDB target {target!r}: use unix:/path or tcp:host:port")
    except OSError as exc:
        raise OvsdbUnavailable(f"cannot connect to OVSDB at {target}: {exc.strerror or exc}") from None
    return sock


class OvsdbClient:
    def __init__(self, target: str, timeout: float = 10.0) -> None:
        self.target = target
        self._sock = _connect(target, timeout)
        self._framer = MessageFramer()
        self._received: list[str] = []  # complete messages not yet handed out
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> OvsdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(message, separators=(",", ":")).encode())
        except OSError as exc:
            raise OvsdbUnavailable(f"OVSDB at {self.target}: {exc}") from None

    def _receive(self) -> dict[str, Any]:
        while not self._received:
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise OvsdbUnavailable(f"OVSDB at {self.target}: {exc}") from None
            if not chunk:
                raise OvsdbUnavailable(f"OVSDB at {self.target} closed the connection")
            try:
                self._received += self._framer.feed(chunk)
            except UnicodeDecodeError as exc:
                raise OvsdbUnavailable(f"OVSDB at {self.target} sent invalid UTF-8: {exc}") from None
        text = self._received.pop(0)
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise OvsdbUnavailable(f"OVSDB at {self.target} sent invalid JSON: {exc}") from None
        if not isinstance(message, dict):
            raise OvsdbUnavailable(f"OVSDB at {self.target} sent a JSON {type(message).__name__}, not an object")
        return message

    def call(self, method: str, params: list[Any]) -> Any:
        request_id = next(self._ids)
        self._send({"method": method, "params": params, "id": request_id})
        while True:
            message = self._receive()
            if message.get("method") == "echo":  # keepalive from the server
                self._send({"result": message.get("params", []), "error": None, "id": message.get("id")})
                continue
            if message.get("id") != request_id:
                continue  # an update notification or a stale reply
            if message.get("error"):
                raise OvsdbError(str(message["error"]), "", None)
            return message.get("result")

    def transact(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        """Run ops atomically; raise OvsdbError naming the first failed op."""
        results = self.call("transact", [DATABASE, *ops])
        for index, result in enumerate(results):
            if isinstance(result, dict) and result.get("error"):
                op_index = index if index < len(ops) else None  # past the ops: commit failed
                raise OvsdbError(result["error"], result.get("details", ""), op_index)
        return results


def ovs_map(values: dict[str, str]) -> list[Any]:
    return ["map", sorted(values.items())]


def from_ovs_map(value: list[Any]) -> dict[str, str]:
    return dict(value[1]) if value and value[0] == "map" else {}


def from_ovs_set(value: Any) -> list[Any]:
    """OVSDB encodes a one-element set as the element itself."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1]
    return [value]
