"""Delegate address management to an IPAM plugin found on CNI_PATH.

The IPAM plugin gets our own stdin and environment with CNI_COMMAND set, as
the reference plugins do. If it does not speak the netconf's cniVersion (an
older host-local and a 1.1.0 config), we ask it which versions it speaks and
retry with the newest one we share; the result is converted back later.

A call can run while its caller does other work (IpamCall): ADD and DEL start
the IPAM plugin and then have the kernel move the VF between namespaces. Both
are mostly waiting, so on a node they overlap instead of adding up.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping

from cni_hwol.cni.errors import INCOMPATIBLE_VERSION, INVALID_NETCONF, IPAM_ERROR, CNIError
from cni_hwol.cni.versions import SUPPORTED_VERSIONS, version_tuple

TIMEOUT_SECONDS = 60


def find_plugin(name: str, cni_path: tuple[str, ...]) -> str:
    for directory in cni_path:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(
        INVALID_NETCONF,
        f"IPAM plugin {name!r} not found in CNI_PATH ({':'.join(cni_path) or 'empty'})",
    )


def _spawn(plugin: str, command: str, stdin: bytes, environ: Mapping[str, str]) -> subprocess.Popen:
    # stdin is a memfd, not a pipe: the plugin reads it whenever it starts, and
    # nothing here has to stay around to feed it.
    stdin_fd = os.memfd_create("cni-hwol-ipam-stdin", os.MFD_CLOEXEC)
    try:
        os.write(stdin_fd, stdin)
        os.lseek(stdin_fd, 0, os.SEEK_SET)
        return subprocess.Popen(
            [plugin],
            stdin=stdin_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**environ, "CNI_COMMAND": command},
        )
    except OSError as exc:
        raise CNIError(IPAM_ERROR, f"cannot run IPAM plugin {plugin}", str(exc)) from None
    finally:
        os.close(stdin_fd)


def _pass_on(stderr: bytes) -> None:
    """The IPAM plugin's log lines go to our caller's stderr, as if it had run them itself."""
    view = memoryview(stderr)
    while view:
        view = view[os.write(2, view) :]


def _collect(proc: subprocess.Popen, plugin: str, command: str) -> tuple[int, bytes, bytes]:
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        _pass_on(stderr)
        raise CNIError(IPAM_ERROR, f"IPAM plugin {plugin} {command} timed out after {TIMEOUT_SECONDS}s") from None
    _pass_on(stderr)
    return proc.returncode, stdout, stderr


def _exec(plugin: str, command: str, stdin: bytes, environ: Mapping[str, str]) -> tuple[int, bytes, bytes]:
    return _collect(_spawn(plugin, command, stdin, environ), plugin, command)


def _error_of(plugin: str, command: str, stdout: bytes, stderr: bytes) -> CNIError:
    """The IPAM plugin's error as ours: well-known codes (<100) pass through; its
    plugin-specific codes mean nothing in our numbering, so they become IPAM_ERROR."""
    name = os.path.basename(plugin)
    try:
        body = json.loads(stdout)
        code = int(body.get("code") or IPAM_ERROR)
        details = str(body.get("details", ""))
        if code >= 100:
            details = f"{name} code {code}" + (f": {details}" if details else "")
            code = IPAM_ERROR
        return CNIError(code, f"IPAM plugin {name} {command} failed: {body.get('msg', '')}", details)
    except (ValueError, AttributeError, TypeError):
        text = (stderr or stdout).decode(errors="replace").strip()[:500]
        return CNIError(IPAM_ERROR, f"IPAM plugin {name} {command} failed", text)


def _versions_of(plugin: str, environ: Mapping[str, str]) -> set[str]:
    code, stdout, _ = _exec(plugin, "VERSION", b'{"cniVersion":"0.4.0"}', environ)
    if code != 0:
        return set()
    try:
        return set(json.loads(stdout).get("supportedVersions", []))
    except (ValueError, AttributeError):
        return set()


def speaks(plugin_type: str, version: str, cni_path: tuple[str, ...], environ: Mapping[str, str]) -> bool:
    """Whether the IPAM plugin supports a spec version (GC and STATUS need 1.1.0)."""
    return version in _versions_of(find_plugin(plugin_type, cni_path), environ)


def _shared_version(plugin: str, environ: Mapping[str, str]) -> str | None:
    theirs = _versions_of(plugin, environ)
    shared = [v for v in SUPPORTED_VERSIONS if v in theirs]
    return max(shared, key=version_tuple) if shared else None


def _with_version(stdin: bytes, version: str) -> bytes:
    conf = json.loads(stdin)
    conf["cniVersion"] = version
    conf.pop("prevResult", None)
    return json.dumps(conf).encode()


class IpamCall:
    """One IPAM plugin call, started at once; result() collects it."""

    def __init__(
        self, plugin_type: str, command: str, stdin: bytes, cni_path: tuple[str, ...], environ: Mapping[str, str]
    ) -> None:
        self.plugin_type = plugin_type
        self.command = command
        self.stdin = stdin  # what the plugin took; a version retry changes it
        self._environ = environ
        self._plugin = find_plugin(plugin_type, cni_path)
        self._proc = _spawn(self._plugin, command, stdin, environ)
        self._first: tuple[int, bytes, bytes] | CNIError | None = None
        self.succeeded: bool | None = None  # how result() went; None before it is asked

    def wait(self) -> None:
        """Let the plugin finish; never raises (result() reports how it went)."""
        if self._first is None:
            try:
                self._first = _collect(self._proc, self._plugin, self.command)
            except CNIError as exc:
                self._first = exc

    def result(self) -> dict | None:
        """The plugin's JSON output (None when empty); CNIError when it failed."""
        self.succeeded = False
        output = self._result()
        self.succeeded = True
        return output

    def _result(self) -> dict | None:
        self.wait()
        if isinstance(self._first, CNIError):
            raise self._first
        plugin, command = self._plugin, self.command
        code, stdout, stderr = self._first
        if code != 0:
            error = _error_of(plugin, command, stdout, stderr)
            if error.code != INCOMPATIBLE_VERSION:
                raise error
            version = _shared_version(plugin, self._environ)
            if version is None:
                raise error
            self.stdin = _with_version(self.stdin, version)
            code, stdout, stderr = _exec(plugin, command, self.stdin, self._environ)
            if code != 0:
                raise _error_of(plugin, command, stdout, stderr)
        if not stdout.strip():
            return None
        try:
            return json.loads(stdout)
        except ValueError:
            raise CNIError(IPAM_ERROR, f"IPAM plugin {self.plugin_type} printed something that is not JSON") from None


def invoke(
    plugin_type: str, command: str, stdin: bytes, cni_path: tuple[str, ...], environ: Mapping[str, str]
) -> tuple[dict | None, bytes]:
    """Run the IPAM plugin; answers its JSON output (None when empty) and the stdin it took."""
    call = IpamCall(plugin_type, command, stdin, cni_path, environ)
    return call.result(), call.stdin
