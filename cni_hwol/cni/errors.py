"""CNI errors and their well-known codes (CNI spec, "Error" section)."""

from __future__ import annotations

# Well-known codes reserved by the spec.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_NETCONF = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
LIMITED_CONNECTIVITY = 51

# Plugin-specific codes start at 100, as the spec asks.
DEVICE_ERROR = 100  # the VF or its representor is missing or unusable
OVS_ERROR = 101  # OVSDB refused the change or the bridge is missing
IPAM_ERROR = 102  # the delegated IPAM plugin failed without a code of its own
NETLINK_ERROR = 103  # the kernel refused a link, address or route change
INTERNAL_ERROR = 999


class CNIError(Exception):
    """An error the plugin reports to the runtime as CNI error JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_dict(self, cni_version: str) -> dict:
        body: dict = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            body["details"] = self.details
        return body

    def to_json(self, cni_version: str) -> str:
        import json  # not at module level: VERSION loads this module and needs no json

        return json.dumps(self.to_dict(cni_version))

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg
