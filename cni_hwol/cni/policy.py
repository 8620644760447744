"""What a netconf may ask for on this node: the node file's settings and per-key rules.

With Multus, whoever may create a NetworkAttachmentDefinition writes the netconf
root runs, and a pod's author writes its cni-args. The node file (installed by
the DaemonSet, read by cni_hwol/nodeconf.py) is the operator's answer:

    {"settings": {"ovsdbSocket": "unix:/var/run/openvswitch/db.sock",
                  "logFile": "/var/log/cni-hwol/cni-hwol.log"},
     "netconf": {"logLevel": "any", "bridge": ["br-int", "br-ex"], "logFile": ["/var/log/cni-hwol/"]}}

`settings` are the node's own values: they replace the plugin's defaults, so a
netconf that does not name a key gets the node's value. `netconf` says, per key,
what a netconf may ask for instead: "any" (whatever the parser accepts), "never"
(only the node's value), or a list of allowed values, where for a path key an
entry ending in "/" allows any normalized path below it. A governed key the file
does not name is "never" (or the key's own strict default): the file is strict
unless it says otherwise. Without a node file every key works as the netconf says.

A later key is one more entry in GOVERNED: a dotted name reaches into the netconf
("args.cni.ovnPort", "runtimeConfig.CNIDeviceInfoFile"), `field` is set only
for keys the node can also give a value for. No Linux calls here.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass
from typing import Any

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import NetConf, parse_netconf, zero_is_unset
from cni_hwol.cni.versions import LATEST_VERSION

ANY = "any"
NEVER = "never"
Rule = str | tuple[Any, ...]  # ANY, NEVER, or the allowed values


@dataclass(frozen=True)
class Key:
    name: str  # as the netconf spells it; dots reach into nested objects
    field: str | None = None  # the NetConf attribute a node setting replaces; None: no node setting
    paths: bool = False  # values are absolute paths: an allowed entry ending in "/" covers what is below it
    strict: Rule = NEVER  # the rule when the node file names no rule for this key
    harmless: tuple[Any, ...] = ()  # values any netconf may ask for: they give the pod nothing


GOVERNED: tuple[Key, ...] = (
    Key("ovsdbSocket", "ovsdb_socket"),  # tcp: reaches any host, with pod metadata
    Key("stateDir", "state_dir", paths=True),  # root creates directories there; a second VF-claim namespace
    Key("sysfsRoot", "sysfs_root", paths=True),  # a forged tree names any netdev as the VF
    Key("logFile", "log_file", paths=True),  # root appends there
    Key("deviceInfoDir", "device_info_dir", paths=True),  # root writes runtimeConfig.CNIDeviceInfoFile below it
    Key("logLevel", "log_level"),
    Key("bridge", "bridge"),  # another bridge is another network (br-ex)
    Key("vlan", "vlan"),  # another tag is another tenant's segment; 0 asks for nothing (netconf.UNSET_ZERO)
    Key("ipam.dataDir", paths=True),  # host-local, run as root, creates directories and files there
    # A pod's cni-args: its own OVN port name claims another pod's port (and its traffic).
    # args.cni.mac is not here: like mac and runtimeConfig.mac it is the pod's own address.
    Key("args.cni.ovnPort"),
    Key("args.cni.externalIDs"),  # iface-id and friends, the same claim by another name
    # A trusted VF may go promiscuous and change its MAC: it sees others' traffic. "off" takes that away.
    Key("trust", harmless=("off",)),
)
# The spellings a netconf may ask for a key by: ovs-cni's socket_file is ovsdbSocket.
SPELLINGS: dict[str, tuple[str, ...]] = {"ovsdbSocket": ("ovsdbSocket", "socket_file")}


@dataclass(frozen=True)
class NodePolicy:
    source: str  # the node file, named in every refusal
    node: NetConf  # the node's settings over the plugin's defaults
    rules: dict[str, Rule]
    keys: tuple[Key, ...] = GOVERNED

    def rule(self, key: Key) -> Rule:
        return self.rules.get(key.name, key.strict)

    def node_value(self, key: Key) -> Any:
        return getattr(self.node, key.field) if key.field else None


def _bad_file(source: str, msg: str) -> CNIError:
    return CNIError(INVALID_NETCONF, f"node file {source}: {msg}")


def parse_node_config(data: bytes, source: str, keys: tuple[Key, ...] = GOVERNED) -> NodePolicy:
    """The node file's text as a policy; anything malformed refuses every verb (fail closed)."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_file(source, f"not valid JSON ({exc})") from None
    if not isinstance(body, dict) or set(body) - {"settings", "netconf"}:
        raise _bad_file(source, "must be an object with 'settings' and 'netconf' only")
    settings = body.get("settings", {})
    rules = body.get("netconf", {})
    if not isinstance(settings, dict) or not isinstance(rules, dict):
        raise _bad_file(source, "'settings' and 'netconf' must be objects")
    by_name = {key.name: key for key in keys}
    settable = {key.name for key in keys if key.field}
    if set(settings) - settable:
        raise _bad_file(source, f"unknown settings {sorted(set(settings) - settable)}; known: {sorted(settable)}")
    if set(rules) - set(by_name):
        raise _bad_file(source, f"rules for unknown keys {sorted(set(rules) - set(by_name))}; known: {sorted(by_name)}")
    # The node's values pass the netconf's own checks (and are normalized as a netconf's would be).
    node_conf = json.dumps({"cniVersion": LATEST_VERSION, "name": "node", "type": "cni-hwol", **settings})
    try:
        node = parse_netconf(node_conf.encode())
    except CNIError as exc:
        raise _bad_file(source, f"settings: {exc}") from None
    return NodePolicy(source, node, {name: _parse_rule(source, by_name[name], r) for name, r in rules.items()}, keys)


def _parse_rule(source: str, key: Key, rule: Any) -> Rule:
    if rule in (ANY, NEVER):
        return rule
    if not isinstance(rule, list):
        raise _bad_file(source, f'netconf.{key.name} must be "any", "never" or a list of allowed values')
    for entry in rule:
        directory = isinstance(entry, str) and entry.endswith("/") and entry != "/"
        if key.paths and not (
            isinstance(entry, str) and entry[:1] == "/" and _normalized(entry[:-1] if directory else entry)
        ):
            raise _bad_file(source, f"netconf.{key.name}: {entry!r} is not a normalized absolute path")
    return tuple(rule)


def _normalized(path: str) -> bool:
    """No '.', '..', '//', trailing '/' or NUL: the path says where it goes."""
    return "\0" not in path and not path.startswith("//") and posixpath.normpath(path) == path


def permits(policy: NodePolicy, key: Key, value: Any) -> bool:
    """May a netconf ask for this value? The node's own value is always allowed."""
    if key.field and value == policy.node_value(key):
        return True
    if value in key.harmless:
        return True
    rule = policy.rule(key)
    if rule == ANY:
        return True
    if rule == NEVER:
        return False
    for entry in rule:
        if value == entry and type(value) is type(entry) and not (key.paths and entry.endswith("/")):
            return True
        if (
            key.paths
            and isinstance(value, str)
            and entry.endswith("/")
            and value.startswith(entry)
            and value != entry
            and _normalized(value)
        ):
            return True
    return False


def _asked(raw: dict[str, Any], key: Key) -> tuple[str, Any] | None:
    """The spelling and value this (dotted) key is asked for by in the netconf; null, "" and a 0
    that means "not set" (netconf.zero_is_unset) name nothing."""
    for name in SPELLINGS.get(key.name, (key.name,)):
        value: Any = raw
        parts = name.split(".")
        for depth, part in enumerate(parts):
            value = _member(value, part, any_case=parts[:2] == ["args", "cni"] and depth == 2)
        if not (value is None or value == "" or zero_is_unset(name, value)):
            return name, value
    return None


def _member(value: Any, name: str, any_case: bool) -> Any:
    """value[name]; in args.cni in any case, as the parser reads a pod's cni-args (ovs-cni's "OvnPort")."""
    if not isinstance(value, dict):
        return None
    if any_case:
        return next((item for key, item in value.items() if key.lower() == name.lower()), None)
    return value.get(name)


def apply_node_policy(conf: NetConf, policy: NodePolicy | None) -> NetConf:
    """The netconf as this node runs it: node settings where it names nothing, refused where it asks too much."""
    if policy is None:
        return conf
    raw = json.loads(conf.raw) if conf.raw else {}
    changes: dict[str, Any] = {}
    for key in policy.keys:
        asked = _asked(raw, key)
        if asked is None:
            if key.field:
                changes[key.field] = policy.node_value(key)
            continue
        spelling, value = asked
        if key.field:
            value = getattr(conf, key.field)  # as parsed: normalized and type-checked
        if not permits(policy, key, value):
            rule = policy.rule(key)
            allowed = "nothing else" if rule == NEVER else ", ".join(map(str, rule))
            node_value = f" (the node's: {policy.node_value(key)})" if key.field else ""
            raise CNIError(
                INVALID_NETCONF,
                f"{spelling} {str(value)[:120]!r} is not allowed on this node{node_value}",
                f"the node file {policy.source} allows {allowed}",
            )
    return dataclasses.replace(conf, **changes)
