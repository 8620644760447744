"""The CNI_* environment variables, parsed and validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cni_hwol.cni.errors import INVALID_ENVIRONMENT, CNIError

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS")

# Which variables each command cannot do without (CNI spec 1.1, "CNI operations"). CNI_PATH is
# optional for every verb but GC: without it a verb that needs the IPAM plugin says it cannot
# find it (ADD: code 7, STATUS: code 50), and DEL of an attachment it never made succeeds.
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": ("CNI_PATH",),
    "STATUS": (),
    "VERSION": (),
}

# The spec: alphanumerics plus "_", ".", "-", starting with an alphanumeric.
# The length cap keeps state file names within NAME_MAX.
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
IFNAME_MAX_BYTES = 15  # IFNAMSIZ - 1


@dataclass(frozen=True)
class CniEnv:
    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    path: tuple[str, ...] = ()
    args: Mapping[str, str] = field(default_factory=dict)


def validate_ifname(name: str) -> str:
    """Linux interface name rules (dev_valid_name), with CNI's error code."""
    if not name:
        raise CNIError(INVALID_ENVIRONMENT, "CNI_IFNAME is empty")
    if len(name.encode()) > IFNAME_MAX_BYTES:
        raise CNIError(
            INVALID_ENVIRONMENT,
            f"CNI_IFNAME {name!r} is longer than {IFNAME_MAX_BYTES} bytes",
        )
    if name in (".", ".."):
        raise CNIError(INVALID_ENVIRONMENT, f"CNI_IFNAME {name!r} is not a valid name")
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in name):
        raise CNIError(
            INVALID_ENVIRONMENT,
            f"CNI_IFNAME {name!r} contains '/', ':', whitespace or a control character",
        )
    return name


def validate_container_id(container_id: str) -> str:
    if not _CONTAINER_ID.fullmatch(container_id):
        raise CNIError(
            INVALID_ENVIRONMENT,
            f"CNI_CONTAINERID {container_id[:80]!r} is invalid: use 1 to 128 of "
            "letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return container_id


def parse_cni_args(raw: str) -> dict[str, str]:
    """CNI_ARGS is "K1=V1;K2=V2"; an empty item is tolerated, a bare key is not."""
    args: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CNIError(INVALID_ENVIRONMENT, f"CNI_ARGS item {item[:80]!r} is not KEY=VALUE")
        args[key] = value
    return args


def parse_env(environ: Mapping[str, str]) -> CniEnv:
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise CNIError(
            INVALID_ENVIRONMENT,
            f"CNI_COMMAND {command[:40]!r} is not one of {', '.join(COMMANDS)}",
        )
    missing = [name for name in _REQUIRED[command] if not environ.get(name)]
    if missing:
        raise CNIError(INVALID_ENVIRONMENT, f"{command} needs {', '.join(missing)}")
    if any("\0" in value for value in environ.values()):
        raise CNIError(INVALID_ENVIRONMENT, "an environment variable contains a NUL byte")

    container_id = environ.get("CNI_CONTAINERID", "")
    ifname = environ.get("CNI_IFNAME", "")
    netns = environ.get("CNI_NETNS", "")
    if container_id:
        validate_container_id(container_id)
    if ifname:
        validate_ifname(ifname)
    if netns and not netns.startswith("/"):
        raise CNIError(INVALID_ENVIRONMENT, f"CNI_NETNS {netns[:80]!r} is not an absolute path")
    return CniEnv(
        command=command,
        container_id=container_id,
        netns=netns,
        ifname=ifname,
        path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p),
        args=parse_cni_args(environ.get("CNI_ARGS", "")),
    )
