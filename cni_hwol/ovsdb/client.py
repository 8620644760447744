"""A synchronous OVSDB JSON-RPC client (RFC 7047) over unix or TCP sockets.

Only what a CNI exec needs: one connection, "transact" requests, and answers to
the server's "echo" keepalives. Messages are JSON values back to back on the
stream, with no framing, so replies are parsed incrementally.
"""

from __future__ import annotations

import itertools
import json
import socket
from typing import Any

DATABASE = "Open_vSwitch"
_decoder = json.JSONDecoder()


class OvsdbUnavailable(Exception):
    """The server cannot be reached or dropped the connection."""


class OvsdbError(Exception):
    """The server refused a transaction; .error is RFC 7047's error string."""

    def __init__(self, error: str, details: str, op_index: int | None) -> None:
        super().__init__(f"{error}: {details}" if details else error)
        self.error = error
        self.details = details
        self.op_index = op_index


def _connect(target: str, timeout: float) -> socket.socket:
    kind, _, rest = target.partition(":")
    try:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(rest)
        elif kind == "tcp":
            host, _, port = rest.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        else:
            raise OvsdbUnavailable(f"unsupported OVSDB target {target!r}")
    except OSError as exc:
        raise OvsdbUnavailable(f"cannot connect to OVSDB at {target}: {exc.strerror or exc}") from None
    return sock


class OvsdbClient:
    def __init__(self, target: str, timeout: float = 10.0) -> None:
        self.target = target
        self._sock = _connect(target, timeout)
        self._buffer = ""
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
        while True:
            stripped = self._buffer.lstrip()
            if stripped:
                try:
                    message, end = _decoder.raw_decode(stripped)
                except ValueError:
                    pass  # incomplete: read more
                else:
                    self._buffer = stripped[end:]
                    return message
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise OvsdbUnavailable(f"OVSDB at {self.target}: {exc}") from None
            if not chunk:
                raise OvsdbUnavailable(f"OVSDB at {self.target} closed the connection")
            self._buffer += chunk.decode()

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
