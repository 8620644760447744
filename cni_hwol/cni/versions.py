"""The CNI spec versions this plugin speaks."""

from __future__ import annotations

from cni_hwol.cni.errors import INCOMPATIBLE_VERSION, CNIError

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
# The spec version each newer verb first appeared in: a config of an older version
# cannot ask for it (CNI spec, "Version considerations").
VERB_SINCE = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CNIError(INCOMPATIBLE_VERSION, f"malformed cniVersion {version!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def require_supported(version: str) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise CNIError(
            INCOMPATIBLE_VERSION,
            f"incompatible CNI versions: config is {version!r}, plugin supports {', '.join(SUPPORTED_VERSIONS)}",
        )
    return version


def require_verb_in_version(command: str, version: str) -> None:
    since = VERB_SINCE.get(command)
    if since and version_tuple(version) < version_tuple(since):
        raise CNIError(
            INCOMPATIBLE_VERSION,
            f"config version {version} does not allow {command}: it came in CNI {since}",
        )


def version_json() -> str:
    """The VERSION answer, written out by hand: VERSION is answered before the
    json module (and the re module it imports) would have loaded."""
    versions = ", ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
    return f'{{"cniVersion": "{LATEST_VERSION}", "supportedVersions": [{versions}]}}'
