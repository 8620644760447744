"""Property-based fuzzing: parsing any environment or stdin either succeeds or
raises a CNIError (which becomes error JSON), never anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni_hwol.cni import netconf
from cni_hwol.cni.env import parse_env
from cni_hwol.cni.errors import CNIError
from cni_hwol.cni.netconf import parse_netconf, render_external_ids, resolve_device_id, resolve_mac
from cni_hwol.cni.result import parse_result, render_result
from cni_hwol.cni.versions import SUPPORTED_VERSIONS
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


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> dict[str, str]:
    """Where a fuzzed verb may look: an empty CNI_PATH, a file that is no netns, a state
    directory of its own, an OVSDB socket nobody listens on. Nothing reaches the host."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "bin").mkdir()
    (root / "not-a-netns").write_text("")
    return {
        "CNI_PATH": str(root / "bin"),
        "CNI_NETNS": str(root / "not-a-netns"),
        "stateDir": str(root / "state"),
        "sysfsRoot": str(root / "sys"),
        "ovsdbSocket": f"unix:{root / 'no-ovsdb.sock'}",
    }


def test_the_entry_point_always_answers_json(sandbox, monkeypatch):
    """Every verb with a full environment, on stdin that is garbage or a fuzzed netconf:
    the answer is the CNI error JSON (or an empty success), never an internal error."""
    calls = {"parse": 0, "parsed": 0}
    real_parse = netconf.parse_netconf

    def spy(data: bytes):
        calls["parse"] += 1
        conf = real_parse(data)
        calls["parsed"] += 1
        return conf

    monkeypatch.setattr(netconf, "parse_netconf", spy)
    safe = {"stateDir": sandbox["stateDir"], "sysfsRoot": sandbox["sysfsRoot"], "ovsdbSocket": sandbox["ovsdbSocket"]}
    # 1.1.0 half the time: it has every verb.
    versions = st.just("1.1.0") | st.sampled_from(SUPPORTED_VERSIONS)
    base = st.fixed_dictionaries({"cniVersion": versions, "name": st.just("fuzz")})
    # A few fuzzed keys on a valid base: most parse, so the verbs behind the parser run too.
    few_keys = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=2)
    fuzzed_confs = st.tuples(base, few_keys).map(lambda pair: {**pair[0], **pair[1], **safe})
    stdins = st.binary(max_size=200) | fuzzed_confs.map(lambda conf: json.dumps(conf).encode())
    environ = {
        "CNI_CONTAINERID": "fuzz0",
        "CNI_IFNAME": "net1",
        "CNI_NETNS": sandbox["CNI_NETNS"],
        "CNI_PATH": sandbox["CNI_PATH"],
    }

    cni_args = st.sampled_from(["", "IgnoreUnknown=1;K8S_POD_NAME=p", "deviceID=0000:03:00.2"]) | st.text(max_size=30)

    @settings(max_examples=300, deadline=None, derandomize=True)  # the same examples every run: the counts below hold
    @given(stdins, st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS", "BOGUS"]), cni_args)
    def answer(data, command, cni_args):
        status, output = run_cni({**environ, "CNI_COMMAND": command, "CNI_ARGS": cni_args.replace("\0", "")}, data)
        if status == 0:
            assert command in ("DEL", "CHECK", "GC", "STATUS") and output == ""
            return
        body = json.loads(output)
        assert status == 1 and isinstance(body["code"], int) and body["msg"]
        assert body["code"] != 999, body

    answer()
    # The fuzz reaches the netconf parser, and past it into the verbs.
    assert calls["parse"] > 100 and calls["parsed"] > 30, calls
