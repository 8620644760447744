"""The CNI spec versions this plugin speaks."""

from __future__ import annotations

from cni_hwol.cni.errors import INCOMPATIBLE_VERSION, CNIError

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]


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


def version_json() -> str:
    """The VERSION answer, written out by hand: VERSION is answered before the
    json module (and the re module it imports) would have loaded."""
    versions = ", ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
    return f'{{"cniVersion": "{LATEST_VERSION}", "supportedVersions": [{versions}]}}'
