"""Property-based fuzzing: parsing any environment or stdin either succeeds or
raises a CNIError (which becomes error JSON), never anything else."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cni_hwol.cni.env import parse_env
from cni_hwol.cni.errors import CNIError
from cni_hwol.cni.netconf import parse_netconf, render_external_ids, resolve_device_id, resolve_mac
from cni_hwol.cni.result import parse_result, render_result
from cni_hwol.main import run_cni

KEYS = [
    "cniVersion",
    "name",
    "type",
    "bridge",
    "ovsdbSocket",
    "deviceID",
    "mtu",
    "mac",
    "vlan",
    "externalIDs",
    "ipam",
    "stateDir",
    "sysfsRoot",
    "logFile",
    "logLevel",
    "prevResult",
    "runtimeConfig",
    "dns",
    "cni.dev/valid-attachments",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
netconfs = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10)
cni_vars = st.dictionaries(
    st.sampled_from(["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH", "CNI_ARGS"]),
    st.text(max_size=30) | st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"]),
)


@settings(max_examples=400, deadline=None)
@given(netconfs, cni_vars)
def test_netconf_and_env_parse_or_raise_cni_error(conf, environ):
    try:
        nc = parse_netconf(json.dumps(conf).encode())
        env = parse_env({k: v.replace("\0", "") for k, v in environ.items()})
        resolve_mac(nc, env)
        render_external_ids(nc, env)
        resolve_device_id(nc, env)
    except CNIError as exc:
        assert exc.code in (1, 4, 6, 7) and exc.msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_raw_stdin_never_escapes_as_an_exception(data):
    try:
        parse_netconf(data)
    except CNIError as exc:
        assert exc.code in (1, 6, 7)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["interfaces", "ips", "routes", "dns", "cniVersion"]), json_values))
def test_results_parse_or_raise_cni_error(body):
    try:
        result = parse_result(body)
        render_result(result, "1.1.0")
    except CNIError as exc:
        assert exc.code in (1, 6)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS", "BOGUS"]))
def test_the_entry_point_always_answers_json(data, command):
    # Without CNI_PATH and the other variables, nothing can reach the system.
    status, output = run_cni({"CNI_COMMAND": command}, data)
    assert status == 1
    body = json.loads(output)
    assert isinstance(body["code"], int) and body["msg"]
