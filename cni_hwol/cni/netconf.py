"""The plugin's network configuration (stdin JSON), parsed and validated.

Every key is checked for type and range here, so the rest of the plugin can
trust a NetConf and never sees raw JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from cni_hwol.cni.env import CniEnv
from cni_hwol.cni.errors import DECODE_FAILURE, INVALID_NETCONF, CNIError
from cni_hwol.cni.versions import require_supported

DEFAULT_BRIDGE = "br-int"
AUTO_BRIDGE = "auto"  # the bridge holding the VF's uplink, found on ADD
DEFAULT_OVSDB_SOCKET = "unix:/var/run/openvswitch/db.sock"
DEFAULT_STATE_DIR = "/var/lib/cni/cni-hwol"
DEFAULT_SYSFS_ROOT = "/sys"
DEFAULT_DEVICE_INFO_DIR = "/var/run/k8s.cni.cncf.io/devinfo"  # the NPWG Device Information spec's root
LOG_LEVELS = ("debug", "info", "warning", "error")
# sriov-cni's levels are panic, error, warning, info, debug: its "panic" logs less than "error".
LOG_LEVEL_ALIASES = {"panic": "error"}
MAX_STDIN_BYTES = 1 << 20  # a real netconf is a few KiB; refuse anything absurd

PCI_ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_TEMPLATE = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
TEMPLATE_FIELDS = ("PodNamespace", "PodName", "PodUID", "ContainerID", "IfName", "MAC", "IPAddresses")


@dataclass(frozen=True)
class NetConf:
    cni_version: str
    name: str
    plugin_type: str
    bridge: str = DEFAULT_BRIDGE
    ovsdb_socket: str = DEFAULT_OVSDB_SOCKET
    device_id: str | None = None
    mtu: int | None = None
    mac: str | None = None
    vlan: int | None = None
    external_ids: dict[str, str] = field(default_factory=dict)
    ipam: dict[str, Any] = field(default_factory=dict)
    state_dir: str = DEFAULT_STATE_DIR
    sysfs_root: str = DEFAULT_SYSFS_ROOT
    device_info_dir: str = DEFAULT_DEVICE_INFO_DIR  # runtimeConfig.CNIDeviceInfoFile must be below it
    log_file: str | None = None
    log_level: str = "info"
    dns: dict[str, Any] = field(default_factory=dict)
    prev_result: dict[str, Any] | None = None
    runtime_config: dict[str, Any] = field(default_factory=dict)
    valid_attachments: tuple[dict[str, Any], ...] | None = None  # GC only
    trunk: tuple[int, ...] = ()  # VLAN ids, expanded and sorted
    ofport_request: int | None = None
    bridges: tuple[str, ...] = ()  # with bridge "auto": the bridges it may choose
    readiness: Readiness = field(default_factory=lambda: Readiness())
    cni_args: PodArgs = field(default_factory=lambda: PodArgs())  # Multus' args.cni: the pod's cni-args
    vf_settings: dict[str, Any] = field(default_factory=dict)  # spoofchk, trust, link_state: set through the PF
    tx_rate: dict[str, int] = field(default_factory=dict)  # tx_share, tx_max (bytes/s) of the VF's devlink port
    unsupported: tuple[str, ...] = ()  # keys asking for what cni-hwol cannot do: ADD refuses them
    raw: bytes = b""  # passed unchanged to the IPAM plugin


@dataclass(frozen=True)
class PodArgs:
    """What a pod's cni-args annotation asks for (Multus passes it as the netconf's args.cni)."""

    mac: str | None = None
    ovn_port: str | None = None
    external_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Readiness:
    """How long ADD waits for the port to forward (ovs-cni's link-state keys) and for a controller."""

    link_state_check_retries: int = 5
    link_state_check_interval: int = 600  # ms
    wait_for_external_ids: dict[str, str] = field(default_factory=dict)  # e.g. {"ovn-installed": "true"}
    wait_timeout_ms: int = 10000

    @property
    def vswitchd_timeout_ms(self) -> int:
        """The bound of each of ovs-vswitchd's steps: the port numbered, its link up."""
        return self.link_state_check_retries * self.link_state_check_interval


def _bad(msg: str) -> CNIError:
    return CNIError(INVALID_NETCONF, msg)


def _typed(conf: dict, key: str, kind: type, default: Any = None) -> Any:
    value = conf.get(key, default)
    if value is None:
        return default
    # bool is an int in Python; a JSON true is never a valid number here.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"{key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def normalize_pci_address(value: str, origin: str) -> str:
    address = value.strip().lower()
    if not PCI_ADDRESS.fullmatch(address):
        raise _bad(f"deviceID {value[:64]!r} from {origin} is not a PCI address like 0000:03:00.2")
    return address


def normalize_mac(value: str, origin: str) -> str:
    mac = value.strip().lower().replace("-", ":")
    if not _MAC.fullmatch(mac):
        raise _bad(f"MAC {value[:64]!r} from {origin} is not like 02:00:00:00:00:01")
    first = int(mac[:2], 16)
    if first & 1:
        raise _bad(f"MAC {mac} from {origin} is a multicast address")
    if mac == "00:00:00:00:00:00":
        raise _bad(f"MAC {mac} from {origin} is all zeros")
    return mac


def _validate_bridge(bridge: str) -> str:
    if not bridge or len(bridge.encode()) > 15 or any(c in "/:" or c.isspace() for c in bridge):
        raise _bad(f"bridge {bridge[:64]!r} must be 1-15 bytes without '/', ':' or spaces")
    return bridge


def validate_ovsdb_socket(socket: str, key: str = "ovsdbSocket") -> str:
    kind, _, rest = socket.partition(":")
    if kind == "unix" and rest.startswith("/"):
        return socket
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return socket
    if kind == "ssl":
        raise _bad(f"{key} {socket[:80]!r}: cni-hwol's OVSDB client speaks no SSL; use unix:/path or tcp:host:port")
    raise _bad(f"{key} {socket[:80]!r} must be unix:/absolute/path or tcp:host:port")


# Values that ask for nothing, as if the key were absent: ovs-cni's Go netconf reads 0 and "" as
# "not set", and 0 is sriov-cni's and accelerated-bridge-cni's "no VLAN". The node file's policy
# reads them the same way (cni/policy.py).
UNSET_ZERO = ("mtu", "ofport_request", "link_state_check_retries", "link_state_check_interval", "vlan")
UNSET_EMPTY = ("bridge", "socket_file", "interface_type", "configuration_path")


def zero_is_unset(key: str, value: Any) -> bool:
    """A JSON 0 (a false is not 0) of a key whose 0 means "not set"."""
    return key in UNSET_ZERO and value == 0 and type(value) is int


def _drop_unset(conf: dict) -> dict:
    """The netconf without the keys at values that ask for nothing, so they get the defaults."""
    return {
        key: value
        for key, value in conf.items()
        if not (zero_is_unset(key, value) or (key in UNSET_EMPTY and value == ""))
    }


def _ovsdb_socket(conf: dict) -> str:
    """ovsdbSocket, or ovs-cni's spelling socket_file, where a path without a kind is a unix socket."""
    ours = _typed(conf, "ovsdbSocket", str)
    theirs = _typed(conf, "socket_file", str)
    if theirs is not None:
        if theirs.startswith("/"):
            theirs = f"unix:{theirs}"
        theirs = validate_ovsdb_socket(theirs, "socket_file")
    if ours is not None and theirs is not None and validate_ovsdb_socket(ours) != theirs:
        raise _bad(f"'ovsdbSocket' {ours[:80]!r} and ovs-cni's 'socket_file' {theirs[:80]!r} name different OVSDBs")
    return validate_ovsdb_socket(ours or theirs or DEFAULT_OVSDB_SOCKET)


def _configuration_path_refusal(conf: dict) -> tuple[str, ...]:
    """ovs-cni's flat file of node settings: refused rather than ignored (ADD only, as unsupported)."""
    if conf.get("configuration_path") is None:
        return ()
    return (
        "'configuration_path': cni-hwol reads no file a netconf names; the node's OVSDB socket and "
        "defaults are in its node file (/etc/cni/cni-hwol/node.json, 'settings')",
    )


def _validate_external_ids(value: Any, where: str = "externalIDs") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"{where!r} must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str) or not key:
            raise _bad(f"{where}[{key!r}] must be a string")
        for name in _TEMPLATE.findall(item):
            if name not in TEMPLATE_FIELDS:
                raise _bad(f"{where}[{key!r}] uses {{{{.{name}}}}}; known fields: {', '.join(TEMPLATE_FIELDS)}")
    return dict(value)


def _validate_absolute(key: str, value: str) -> str:
    if not value.startswith("/") or "\0" in value:
        raise _bad(f"{key!r} must be an absolute path")
    return value


# GC's list of attachments still valid. CNI 1.1.0's text named it cni.dev/attachments,
# libcni sends both names (containernetworking/cni#1101): either is the list.
VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


def _validate_valid_attachments(conf: dict) -> tuple[dict[str, str], ...] | None:
    """None when the config has no list; JSON null (libcni's empty list) is an empty one."""
    key = next((key for key in VALID_ATTACHMENTS_KEYS if key in conf), None)
    if key is None:
        return None
    value = [] if conf[key] is None else conf[key]
    # An entry GC misreads would have it remove a live attachment: every field is checked.
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("containerID"), str) and isinstance(item.get("ifname"), str)
        for item in value
    ):
        raise _bad(f"'{key}' must be a list of {{containerID, ifname}} strings")
    return tuple(value)


def _not_json(constant: str) -> None:
    # Python's json module reads NaN and Infinity; JSON (RFC 8259) has no such numbers.
    raise ValueError(f"{constant} is not a JSON number")


def _vlan_id(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4095:
        raise _bad(f"{where} must be a VLAN id 0..4095, got {json.dumps(value)[:32]}")
    return value


def _validate_trunk(value: Any) -> tuple[int, ...]:
    """ovs-cni's shape: [{"id": N} | {"minID": A, "maxID": B}], ranges expanded, duplicates merged."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad('\'trunk\' must be a list of {"id": N} or {"minID": A, "maxID": B}')
    ids: set[int] = set()
    for index, item in enumerate(value):
        where = f"trunk[{index}]"
        if not isinstance(item, dict) or not item or set(item) - {"id", "minID", "maxID"}:
            raise _bad(f'{where} must be {{"id": N}} or {{"minID": A, "maxID": B}}')
        if "id" in item:
            ids.add(_vlan_id(item["id"], f"{where}.id"))
        if "minID" in item or "maxID" in item:
            if "minID" not in item or "maxID" not in item:
                raise _bad(f"{where} needs both minID and maxID")
            low, high = _vlan_id(item["minID"], f"{where}.minID"), _vlan_id(item["maxID"], f"{where}.maxID")
            if low > high:
                raise _bad(f"{where}.minID {low} is above its maxID {high}")
            ids.update(range(low, high + 1))
    return tuple(sorted(ids))


def _vf_vlan_refusals(conf: dict, vlan: int | None) -> tuple[str, ...]:
    """sriov-cni's VF VLAN keys beyond the id, where they ask for what cni-hwol cannot do.

    Their neutral values pass (the sriov-network-operator writes "vlanQoS": 0). The VLAN here is
    the OVS port's tag (switchdev: the VF's frames reach OVS through its representor, not a VF
    VLAN of the PF), which sets no 802.1p priority, tags 802.1Q only, and has its trunks in 'trunk'.
    Only ADD refuses these: DEL and CHECK of an attachment made before must still work.
    """
    refusals = []
    qos = conf.get("vlanQoS")
    if qos is not None and (not isinstance(qos, int) or isinstance(qos, bool) or not 0 <= qos <= 7):
        refusals.append(f"'vlanQoS' must be 0..7, got {json.dumps(qos)[:32]}")
    elif qos:
        refusals.append(f"'vlanQoS' {qos}: the VLAN is the OVS port's tag, which sets no 802.1p priority (only 0)")
    proto = conf.get("vlanProto")
    if proto is not None and (not isinstance(proto, str) or proto.lower() not in ("802.1q", "802.1ad")):
        refusals.append(f'\'vlanProto\' must be "802.1q" or "802.1ad", got {json.dumps(proto)[:32]}')
    elif isinstance(proto, str) and proto.lower() == "802.1ad" and vlan:
        refusals.append(
            "'vlanProto' 802.1ad: the VLAN is the OVS port's tag, which is 802.1Q "
            "(an 802.1ad tag needs OVS's dot1q-tunnel, which cni-hwol does not configure)"
        )
    trunk = conf.get("vlan_trunk")
    if trunk not in (None, ""):
        refusals.append(
            f"'vlan_trunk' {json.dumps(trunk)[:32]} (a VF trunk through the PF) does not apply in switchdev mode: "
            'the OVS port carries trunks, \'trunk\': [{"id": N}, {"minID": A, "maxID": B}]'
        )
    return tuple(refusals)


def _interface_type_refusal(conf: dict) -> tuple[str, ...]:
    """ovs-cni's interface_type (the sriov-network-operator's OVSNetwork NADs carry it): the
    Interface row's type. The representor is a kernel netdev, a "system" port; "dpdk" (OVS-DPDK
    taking the representor through dpdk-devargs) is another datapath cni-hwol does not drive."""
    kind = conf.get("interface_type")
    if kind in (None, "", "system"):
        return ()
    return (f"'interface_type' {json.dumps(kind)[:32]}: cni-hwol adds the representor as a system (kernel) port only",)


def refuse_unsupported(conf: NetConf) -> None:
    """ADD's refusal of keys it cannot honour (see _vf_vlan_refusals, _interface_type_refusal,
    _configuration_path_refusal)."""
    if conf.unsupported:
        raise _bad("; ".join(conf.unsupported))


def _validate_bridges(value: Any, bridge: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(b, str) for b in value):
        raise _bad("'bridges' must be a non-empty list of bridge names")
    if bridge != AUTO_BRIDGE:
        raise _bad(f'\'bridges\' only applies with "bridge": "{AUTO_BRIDGE}"')
    for name in value:
        if name == AUTO_BRIDGE:
            raise _bad(f"'bridges' must name bridges, not {AUTO_BRIDGE!r}")
        try:
            _validate_bridge(name)
        except CNIError as exc:
            raise _bad(f"'bridges': {exc.msg}") from None
    return tuple(dict.fromkeys(value))


def _port_options(conf: dict) -> dict[str, Any]:
    """trunk and ofport_request: the OVS port as ovs-cni users configure it."""
    ofport_request = _typed(conf, "ofport_request", int)
    if ofport_request is not None and not 1 <= ofport_request <= 65279:
        raise _bad(f"'ofport_request' {ofport_request} is outside 1..65279 (OVS's range)")
    return {
        "trunk": _validate_trunk(conf.get("trunk")),
        "ofport_request": ofport_request,
    }


def _bridge_choice(conf: dict) -> dict[str, Any]:
    """bridge and bridges. accelerated-bridge-cni's "bridge": "br1,br2" (the listed bridge holding
    the VF's uplink) is "bridge": "auto" with those "bridges"."""
    bridge = _typed(conf, "bridge", str, DEFAULT_BRIDGE)
    if "," not in bridge:
        return {"bridge": _validate_bridge(bridge), "bridges": _validate_bridges(conf.get("bridges"), bridge)}
    if "bridges" in conf:
        raise _bad("'bridge' lists bridges (accelerated-bridge-cni's shape) and 'bridges' is given too: give one")
    names = [name.strip() for name in bridge.split(",")]
    return {"bridge": AUTO_BRIDGE, "bridges": _validate_bridges(names, AUTO_BRIDGE)}


def _pod_args(conf: dict) -> PodArgs:
    """args.cni.mac, args.cni.ovnPort and args.cni.externalIDs; other cni-args are ignored, as CNI asks."""
    args = conf.get("args")
    if args is None:
        return PodArgs()
    if not isinstance(args, dict):
        raise _bad(f"'args' must be an object, got {type(args).__name__}")
    cni = args.get("cni")
    if cni is None:
        return PodArgs()
    if not isinstance(cni, dict):
        raise _bad(f"'args.cni' must be an object, got {type(cni).__name__}")
    mac, ovn_port = _cni_arg(cni, "mac", str), _cni_arg(cni, "ovnPort", str)
    external_ids = _cni_arg(cni, "externalIDs", dict)
    return PodArgs(
        mac=normalize_mac(mac, "args.cni.mac") if mac else None,
        ovn_port=validate_ovn_port(ovn_port, "args.cni.ovnPort") if ovn_port else None,
        external_ids=_validate_external_ids(external_ids, "args.cni.externalIDs"),
    )


def _cni_arg(cni: dict, key: str, kind: type) -> Any:
    """args.cni's value for key in any case, as ovs-cni reads cni-args ("OvnPort", "ovnport")."""
    spellings = sorted(name for name in cni if name.lower() == key.lower())
    if len(spellings) > 1:
        raise _bad(f"'args.cni' names {key} more than once: {', '.join(spellings)}")
    value = cni[spellings[0]] if spellings else None
    if value is not None and not isinstance(value, kind):
        raise _bad(f"'args.cni.{spellings[0]}' must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _bounded_int(conf: dict, key: str, low: int, high: int, default: int) -> int:
    value = _typed(conf, key, int, default)
    if not low <= value <= high:
        raise _bad(f"{key!r} {value} is outside {low}..{high}")
    return value


def _readiness(conf: dict) -> Readiness:
    wanted = conf.get("waitForExternalIDs")
    if wanted is not None and (
        not isinstance(wanted, dict) or not wanted or not all(k and isinstance(v, str) for k, v in wanted.items())
    ):
        raise _bad('\'waitForExternalIDs\' must be a non-empty object of strings, e.g. {"ovn-installed": "true"}')
    if "waitTimeoutMs" in conf and wanted is None:
        raise _bad("'waitTimeoutMs' only applies with 'waitForExternalIDs'")
    return Readiness(
        link_state_check_retries=_bounded_int(conf, "link_state_check_retries", 1, 1000, 5),
        link_state_check_interval=_bounded_int(conf, "link_state_check_interval", 1, 60000, 600),
        wait_for_external_ids=dict(wanted or {}),
        wait_timeout_ms=_bounded_int(conf, "waitTimeoutMs", 1, 600000, 10000),
    )


def validate_ovn_port(value: str, origin: str) -> str:
    # OVN's logical switch port names are free-form; refuse only what no name holds.
    if len(value) > 255 or not value.isprintable():
        raise _bad(f"ovnPort {value[:64]!r} from {origin} must be 1-255 printable characters")
    return value


def _on_off(conf: dict, key: str) -> bool | None:
    value = conf.get(key)
    if value is None:
        return None
    if value not in ("on", "off"):
        raise _bad(f'{key!r} must be "on" or "off" (as sriov-cni), got {json.dumps(value)[:32]}')
    return value == "on"


def _vf_settings(conf: dict) -> dict[str, Any]:
    """spoofchk, trust and link_state, sriov-cni's keys: the VF as its PF sets it."""
    settings = {"spoofchk": _on_off(conf, "spoofchk"), "trust": _on_off(conf, "trust")}
    link_state = conf.get("link_state")
    if link_state is not None and link_state not in ("auto", "enable", "disable"):
        raise _bad(f'\'link_state\' must be "auto", "enable" or "disable", got {json.dumps(link_state)[:32]}')
    settings["link_state"] = link_state
    return {key: value for key, value in settings.items() if value is not None}


MBPS = 125_000  # bytes per second in one Mbps, as devlink counts rates


def _rate_mbps(conf: dict, key: str) -> int | None:
    value = _typed(conf, key, int)
    if value is not None and not 0 <= value <= 4_000_000:
        raise _bad(f"{key!r} {value} is outside 0..4000000 Mbps")
    return value


def _tx_rate(conf: dict) -> dict[str, int]:
    """min_tx_rate, max_tx_rate (Mbps, sriov-cni's keys) and the bandwidth capability's egressRate
    (bits/s): the pod's egress, shaped by the VF's devlink rate object so it stays offloaded."""
    rate: dict[str, int] = {}
    low, high = _rate_mbps(conf, "min_tx_rate"), _rate_mbps(conf, "max_tx_rate")
    if low is not None:
        rate["tx_share"] = low * MBPS
    if high is not None:
        rate["tx_max"] = high * MBPS
    if high and low and low > high:
        raise _bad(f"'min_tx_rate' {low} is above 'max_tx_rate' {high}")
    bandwidth = (conf.get("runtimeConfig") or {}).get("bandwidth")
    if bandwidth is None:
        return rate
    if not isinstance(bandwidth, dict):
        raise _bad("runtimeConfig.bandwidth must be an object")
    for key in ("ingressRate", "ingressBurst"):
        if bandwidth.get(key):
            raise _bad(f"runtimeConfig.bandwidth.{key}: cni-hwol shapes only the pod's egress (the VF's devlink rate)")
    egress = bandwidth.get("egressRate")
    if egress is not None:
        if not isinstance(egress, int) or isinstance(egress, bool) or egress <= 0:
            raise _bad(f"runtimeConfig.bandwidth.egressRate must be a positive number of bits/s, got {egress!r}")
        rate["tx_max"] = min(filter(None, (rate.get("tx_max"), egress // 8)))
    return rate


def decode_stdin(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_STDIN_BYTES:
        raise CNIError(DECODE_FAILURE, f"network configuration is larger than {MAX_STDIN_BYTES} bytes")
    try:
        conf = json.loads(data, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CNIError(DECODE_FAILURE, "network configuration is not valid JSON", str(exc)) from None
    if not isinstance(conf, dict):
        raise CNIError(DECODE_FAILURE, "network configuration must be a JSON object")
    return conf


def parse_netconf(data: bytes) -> NetConf:
    conf = _drop_unset(decode_stdin(data))
    version = _typed(conf, "cniVersion", str, "")
    if not version:
        raise _bad("'cniVersion' is missing")
    require_supported(version)
    name = _typed(conf, "name", str, "")
    if not _NETWORK_NAME.fullmatch(name):
        raise _bad(f"'name' {name[:64]!r} must be letters, digits, '_', '.', '-' (1-128)")

    mtu = _typed(conf, "mtu", int)
    if mtu is not None and not 68 <= mtu <= 65535:
        raise _bad(f"'mtu' {mtu} is outside 68..65535")
    vlan = _typed(conf, "vlan", int)
    if vlan is not None and not 0 <= vlan <= 4095:
        raise _bad(f"'vlan' {vlan} is outside 0..4095")
    unsupported = _vf_vlan_refusals(conf, vlan) + _interface_type_refusal(conf) + _configuration_path_refusal(conf)
    mac = _typed(conf, "mac", str)
    device_id = _typed(conf, "deviceID", str)
    ipam = _typed(conf, "ipam", dict, {})
    if ipam and not isinstance(ipam.get("type"), str):
        raise _bad("'ipam.type' must name an IPAM plugin")
    if ipam and not re.fullmatch(r"[A-Za-z0-9_.\-]+", ipam["type"]):
        raise _bad(f"'ipam.type' {ipam['type'][:64]!r} is not a plugin name")
    log_level = _typed(conf, "logLevel", str, "info").lower()
    log_level = LOG_LEVEL_ALIASES.get(log_level, log_level)
    if log_level not in LOG_LEVELS:
        raise _bad(f"'logLevel' must be one of {', '.join((*LOG_LEVELS, *LOG_LEVEL_ALIASES))}")
    log_file = _typed(conf, "logFile", str)

    return NetConf(
        cni_version=version,
        name=name,
        plugin_type=_typed(conf, "type", str, ""),
        ovsdb_socket=_ovsdb_socket(conf),
        device_id=normalize_pci_address(device_id, "netconf") if device_id else None,
        mtu=mtu,
        mac=normalize_mac(mac, "netconf") if mac else None,
        vlan=vlan,
        external_ids=_validate_external_ids(conf.get("externalIDs")),
        ipam=ipam,
        state_dir=_validate_absolute("stateDir", _typed(conf, "stateDir", str, DEFAULT_STATE_DIR)),
        sysfs_root=_validate_absolute("sysfsRoot", _typed(conf, "sysfsRoot", str, DEFAULT_SYSFS_ROOT)),
        device_info_dir=_validate_absolute(
            "deviceInfoDir", _typed(conf, "deviceInfoDir", str, DEFAULT_DEVICE_INFO_DIR)
        ),
        log_file=_validate_absolute("logFile", log_file) if log_file else None,
        log_level=log_level,
        dns=_typed(conf, "dns", dict, {}),
        prev_result=_typed(conf, "prevResult", dict),
        runtime_config=_typed(conf, "runtimeConfig", dict, {}),
        valid_attachments=_validate_valid_attachments(conf),
        **_bridge_choice(conf),
        **_port_options(conf),
        readiness=_readiness(conf),
        cni_args=_pod_args(conf),
        vf_settings=_vf_settings(conf),
        tx_rate=_tx_rate(conf),
        unsupported=unsupported,
        raw=data,
    )


def resolve_device_id(conf: NetConf, env: CniEnv) -> str:
    """The VF's PCI address: netconf (Multus), then runtimeConfig, then CNI_ARGS."""
    if conf.device_id:
        return conf.device_id
    runtime = conf.runtime_config.get("deviceID")
    if runtime is not None:
        if not isinstance(runtime, str):
            raise _bad("runtimeConfig.deviceID must be a string")
        return normalize_pci_address(runtime, "runtimeConfig")
    if "deviceID" in env.args:
        return normalize_pci_address(env.args["deviceID"], "CNI_ARGS")
    raise _bad(
        "no deviceID: the VF's PCI address comes from Multus (netconf 'deviceID'), "
        "runtimeConfig.deviceID or CNI_ARGS deviceID=DDDD:BB:DD.F"
    )


def resolve_mac(conf: NetConf, env: CniEnv) -> str | None:
    """The requested pod MAC: runtimeConfig, then args.cni, then CNI_ARGS, then netconf."""
    runtime = conf.runtime_config.get("mac")
    if runtime is not None:
        if not isinstance(runtime, str):
            raise _bad("runtimeConfig.mac must be a string")
        return normalize_mac(runtime, "runtimeConfig")
    if conf.cni_args.mac:
        return conf.cni_args.mac
    if env.args.get("MAC"):
        return normalize_mac(env.args["MAC"], "CNI_ARGS")
    return conf.mac


def resolve_ovn_port(conf: NetConf, env: CniEnv) -> str | None:
    """The OVN logical port (the Interface's iface-id): args.cni beats CNI_ARGS OvnPort (ovs-cni's)."""
    if conf.cni_args.ovn_port:
        return conf.cni_args.ovn_port
    if env.args.get("OvnPort"):
        return validate_ovn_port(env.args["OvnPort"], "CNI_ARGS")
    return None


def render_external_ids(conf: NetConf, env: CniEnv, mac: str = "", ip_addresses: str = "") -> dict[str, str]:
    """The netconf's externalIDs, args.cni's merged over them, with {{.Field}} templates filled in.

    ip_addresses: the lease's addresses as a comma-separated CIDR list (as OVN-Kubernetes writes them).
    """
    values = {
        "PodNamespace": env.args.get("K8S_POD_NAMESPACE", ""),
        "PodName": env.args.get("K8S_POD_NAME", ""),
        "PodUID": env.args.get("K8S_POD_UID", ""),
        "ContainerID": env.container_id,
        "IfName": env.ifname,
        "MAC": mac,
        "IPAddresses": ip_addresses,
    }
    external_ids = {**conf.external_ids, **conf.cni_args.external_ids}
    return {key: _TEMPLATE.sub(lambda m: values[m.group(1)], value) for key, value in external_ids.items()}


def ovn_external_ids(ovn_port: str, env: CniEnv, mac: str, ip_addresses: str) -> dict[str, str]:
    """What OVN-Kubernetes' CNI writes on a pod's Interface, so ovn-controller binds the port."""
    ids = {
        "iface-id": ovn_port,
        "iface-id-ver": env.args.get("K8S_POD_UID", ""),
        "attached_mac": mac,
        "ip_addresses": ip_addresses,
        "sandbox": env.container_id,
    }
    return {key: value for key, value in ids.items() if value}
