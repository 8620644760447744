"""The node file and what it lets a netconf ask for (cni_hwol/cni/policy.py, cni_hwol/nodeconf.py),
and the log's own defences (cni_hwol/logs.py)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni_hwol.cni.errors import INVALID_NETCONF, CNIError
from cni_hwol.cni.netconf import DEFAULT_STATE_DIR, parse_netconf
from cni_hwol.cni.policy import GOVERNED, Key, apply_node_policy, parse_node_config
from cni_hwol.logs import escape_control, open_log_file
from cni_hwol.nodeconf import NODE_CONFIG_ENV, NODE_CONFIG_PATH, install_node_config, read_node_policy

GOVERNED_NAMES = [key.name for key in GOVERNED]
SETTINGS = {
    "ovsdbSocket": "unix:/run/ovs/db.sock",
    "stateDir": "/var/lib/cni/hwol-node",
    "sysfsRoot": "/sys",
    "logFile": "/var/log/cni-hwol/cni-hwol.log",
}


def netconf(**keys) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "net", "type": "cni-hwol", **keys}).encode()


def policy(rules: dict | None = None, settings: dict | None = None, keys=GOVERNED):
    body = {"settings": SETTINGS if settings is None else settings, "netconf": rules or {}}
    return parse_node_config(json.dumps(body).encode(), "/etc/node.json", keys)


def applied(node, **keys):
    return apply_node_policy(parse_netconf(netconf(**keys)), node)


def refusal(node, **keys) -> CNIError:
    with pytest.raises(CNIError) as caught:
        applied(node, **keys)
    assert caught.value.code == INVALID_NETCONF
    return caught.value


def test_without_a_node_file_the_netconf_says_everything():
    conf = parse_netconf(netconf(stateDir="/anywhere", sysfsRoot="/forged", ovsdbSocket="tcp:10.0.0.1:6640"))
    assert apply_node_policy(conf, None) is conf


def test_the_node_settings_replace_the_defaults_where_the_netconf_names_nothing():
    conf = applied(policy())
    assert (conf.ovsdb_socket, conf.state_dir, conf.sysfs_root, conf.log_file) == (
        "unix:/run/ovs/db.sock",
        "/var/lib/cni/hwol-node",
        "/sys",
        "/var/log/cni-hwol/cni-hwol.log",
    )
    assert (conf.bridge, conf.log_level) == ("br-int", "info")  # no setting: the plugin's default


def test_a_netconf_may_repeat_the_node_value_but_not_the_plugin_default():
    assert applied(policy(), stateDir="/var/lib/cni/hwol-node").state_dir == "/var/lib/cni/hwol-node"
    error = refusal(policy(), stateDir=DEFAULT_STATE_DIR)
    assert "stateDir" in error.msg and "/var/lib/cni/hwol-node" in error.msg
    assert error.details == "the node file /etc/node.json allows nothing else"


@pytest.mark.parametrize(
    "key, value",
    [
        ("ovsdbSocket", "tcp:10.0.0.1:6640"),
        ("stateDir", "/tmp/elsewhere"),
        ("sysfsRoot", "/var/lib/kubelet/pods/x/volumes/kubernetes.io~empty-dir/sys"),
        ("logFile", "/etc/cron.d/tenant"),
        ("logLevel", "debug"),
        ("bridge", "br-ex"),
        ("vlan", 100),
        ("ipam", {"type": "host-local", "dataDir": "/etc/cron.d"}),
        ("trust", "on"),
    ],
)
def test_a_strict_node_file_refuses_every_governed_key(key, value):
    assert key in refusal(policy(), **{key: value}).msg
    assert applied(policy(dict.fromkeys(GOVERNED_NAMES, "any")), **{key: value})


def test_sriov_operator_neutral_values_pass_a_strict_node_file():
    """The sriov-network-operator writes "vlan": 0 (no VLAN) and, when asked, "trust": "off" into every NAD."""
    conf = applied(policy(settings={**SETTINGS, "vlan": 100}), vlan=0, trust="off")
    assert (conf.vlan, conf.vf_settings) == (100, {"trust": False})  # the node's VLAN, as if vlan were absent
    assert applied(policy(), vlan=0).vlan is None
    assert "trust 'on'" in refusal(policy(), trust="on").msg
    assert "vlan '7'" in refusal(policy(), vlan=7).msg


def test_any_lets_the_netconf_choose():
    assert applied(policy({"logLevel": "any"}), logLevel="debug").log_level == "debug"


def test_an_allow_list_of_values():
    node = policy({"bridge": ["br-int", "br-tenant"]})
    assert applied(node, bridge="br-tenant").bridge == "br-tenant"
    error = refusal(node, bridge="br-ex")
    assert error.details == "the node file /etc/node.json allows br-int, br-tenant"


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/var/log/tenants/a.log", True),
        ("/var/log/tenants/team/a.log", True),
        ("/var/log/tenants/", False),  # the directory itself
        ("/var/log/tenants/../../../etc/cron.d/x", False),
        ("/var/log/tenants/./a.log", False),
        ("/var/log/tenants//a.log", False),
        ("/var/log/tenants/a/", False),
        ("/var/log/tenantsx/a.log", False),  # a sibling sharing the prefix
        ("/var/log/exact.log", True),
        ("/var/log/exact.log.1", False),
    ],
)
def test_path_allow_lists_cover_normalized_paths_below_a_directory(path, allowed):
    node = policy({"logFile": ["/var/log/tenants/", "/var/log/exact.log"]})
    if allowed:
        assert applied(node, logFile=path).log_file == path
    else:
        refusal(node, logFile=path)


def test_null_or_empty_names_nothing():
    assert applied(policy(), stateDir=None, logFile="").log_file == SETTINGS["logFile"]


def test_a_later_key_is_one_entry_nested_keys_and_strict_defaults_included():
    devinfo = Key("runtimeConfig.CNIDeviceInfoFile", paths=True, strict=("/var/run/k8s.cni.cncf.io/devinfo/",))
    keys = (*GOVERNED, devinfo, Key("args.cni.ovnPort"))
    node = policy(keys=keys)
    ok = "/var/run/k8s.cni.cncf.io/devinfo/dp-x.json"
    applied(node, runtimeConfig={"CNIDeviceInfoFile": ok})
    assert "CNIDeviceInfoFile" in refusal(node, runtimeConfig={"CNIDeviceInfoFile": "/etc/shadow"}).msg
    applied(node, args={"cni": {"other": "x"}})
    assert "args.cni.ovnPort" in refusal(node, args={"cni": {"ovnPort": "other-pod"}}).msg
    applied(policy({"args.cni.ovnPort": ["allowed-port"]}, keys=keys), args={"cni": {"ovnPort": "allowed-port"}})


@pytest.mark.parametrize(
    "text, complaint",
    [
        (b"{", "not valid JSON"),
        (b"[]", "must be an object"),
        (b'{"setings": {}}', "must be an object"),
        (b'{"settings": {"mtu": 9000}}', "unknown settings ['mtu']"),
        (b'{"netconf": {"stateDIr": "any"}}', "unknown keys ['stateDIr']"),
        (b'{"netconf": {"stateDir": "some"}}', '"any", "never" or a list'),
        (b'{"netconf": {"stateDir": ["/var/lib/../../tmp/"]}}', "not a normalized absolute path"),
        (b'{"netconf": {"logFile": ["relative/"]}}', "not a normalized absolute path"),
        (b'{"settings": {"ovsdbSocket": "tcp:nowhere"}}', "settings: ovsdbSocket"),
    ],
)
def test_a_malformed_node_file_refuses_every_verb(text, complaint):
    with pytest.raises(CNIError) as caught:
        parse_node_config(text, "/etc/node.json")
    assert caught.value.code == INVALID_NETCONF
    assert caught.value.msg.startswith("node file /etc/node.json: ") and complaint in caught.value.msg


def test_the_node_file_is_read_from_its_fixed_place_or_the_test_override(tmp_path):
    assert NODE_CONFIG_PATH == "/etc/cni/cni-hwol/node.json"
    path = tmp_path / "node.json"
    assert read_node_policy({NODE_CONFIG_ENV: str(path)}) is None  # no file: as today
    path.write_text(json.dumps({"settings": SETTINGS}))
    path.chmod(0o644)
    if os.geteuid() == 0:
        assert read_node_policy({NODE_CONFIG_ENV: str(path)}).node.state_dir == SETTINGS["stateDir"]


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")
@pytest.mark.parametrize("tamper", ["group-writable", "world-writable", "owned-by-nobody", "a-directory"])
def test_a_node_file_anyone_but_root_could_write_is_refused(tmp_path, tamper):
    path = tmp_path / "node.json"
    if tamper == "a-directory":
        path.mkdir()
    else:
        path.write_text(json.dumps({"settings": SETTINGS, "netconf": {"stateDir": "any"}}))
        path.chmod({"group-writable": 0o664, "world-writable": 0o646}.get(tamper, 0o644))
        if tamper == "owned-by-nobody":
            os.chown(path, 65534, 65534)
    with pytest.raises(CNIError) as caught:
        read_node_policy({NODE_CONFIG_ENV: str(path)})
    assert caught.value.code == INVALID_NETCONF and str(path) in caught.value.msg


def test_the_installer_validates_the_node_file_and_replaces_it_whole(tmp_path):
    source, dest = tmp_path / "configmap.json", tmp_path / "host" / "etc" / "node.json"
    source.write_text(json.dumps({"settings": SETTINGS}))
    install_node_config(source, dest)
    assert dest.read_text() == source.read_text() and dest.stat().st_mode & 0o777 == 0o644
    source.write_text('{"netconf": {"sysfsRoot": "anything"}}')
    with pytest.raises(CNIError, match="node file"):
        install_node_config(source, dest)
    assert json.loads(dest.read_text()) == {"settings": SETTINGS}
    assert sorted(os.listdir(dest.parent)) == ["node.json"]


def test_log_text_is_one_line_with_every_control_character_escaped():
    assert escape_control("a\nb\rc\td\x1b[31m\x00\x7f\x85\u2028\\n") == (
        "a\\nb\\rc\\td\\x1b[31m\\x00\\x7f\\x85\\u2028\\\\n"
    )
    assert escape_control("node 0000:03:00.2 é ✓") == "node 0000:03:00.2 é ✓"


def test_a_log_file_is_a_regular_file_never_a_link_or_a_device(tmp_path):
    log = tmp_path / "logs" / "cni.log"
    os.close(open_log_file(str(log)))
    assert log.stat().st_mode & 0o777 == 0o600 and log.parent.stat().st_mode & 0o777 == 0o700
    victim = tmp_path / "victim"
    victim.write_text("x")
    (tmp_path / "link.log").symlink_to(victim)
    for path in (tmp_path / "link.log", "/dev/null"):
        with pytest.raises(OSError):
            open_log_file(str(path))
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):  # and never blocks waiting for a reader
        open_log_file(str(tmp_path / "fifo"))
    assert victim.read_text() == "x"


def test_the_installer_puts_the_node_file_first_and_a_broken_one_installs_nothing(tmp_path):
    from cni_hwol.install import main as install_main
    from tests.unit.test_install import build

    cni_bin, node_file = tmp_path / "bin", tmp_path / "etc" / "node.json"
    cni_bin.mkdir()
    configmap = tmp_path / "configmap.json"
    configmap.write_text('{"netconf": {"sysfsRoot": "anything"}}')
    args = ["--source", str(build(tmp_path, "b1", "v1")), "--dest", str(cni_bin)]
    args += ["--node-config", str(configmap), "--node-config-dest", str(node_file)]
    assert install_main(args) == 1
    assert os.listdir(cni_bin) == [] and not node_file.exists()
    configmap.write_text(json.dumps({"settings": SETTINGS}))
    assert install_main(args) == 0
    assert (cni_bin / "cni-hwol").is_symlink() and json.loads(node_file.read_text()) == {"settings": SETTINGS}


PATHS = st.sampled_from(["/var/log/tenants", "/var/log", "/etc/cron.d", "/sys", "/", "/tmp"]).flatmap(
    lambda base: st.lists(st.sampled_from(["a", "..", ".", "", "tenants", "b.log"]), max_size=4).map(
        lambda parts: "/".join([base, *parts])
    )
)
VALUES = PATHS | st.sampled_from([*SETTINGS.values(), "tcp:10.0.0.1:6640", "br-ex", "debug", None, "", 7]) | st.text()


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["ovsdbSocket", "stateDir", "sysfsRoot", "logFile"]), VALUES))
def test_whatever_the_netconf_a_strict_node_runs_on_its_own_values_or_refuses(keys):
    """The node's values, or an allowed log below /var/log/tenants/ that stays there; else code 7."""
    node = policy({"logFile": ["/var/log/tenants/"]})
    try:
        conf = applied(node, **keys)
    except CNIError as exc:
        assert exc.code == INVALID_NETCONF
        return
    assert (conf.ovsdb_socket, conf.state_dir, conf.sysfs_root) == (
        SETTINGS["ovsdbSocket"],
        SETTINGS["stateDir"],
        SETTINGS["sysfsRoot"],
    )
    log = conf.log_file
    assert log == SETTINGS["logFile"] or (log.startswith("/var/log/tenants/") and os.path.normpath(log) == log)


@pytest.mark.skipif(os.geteuid() != 0, reason="a node file must be root's")
def test_the_operator_tools_look_where_the_plugin_does(tmp_path):
    import subprocess
    import sys

    (tmp_path / "state").mkdir()
    node_file = tmp_path / "node.json"
    node_file.write_text(json.dumps({"settings": {"stateDir": str(tmp_path / "state"), "ovsdbSocket": "unix:/no/db"}}))
    node_file.chmod(0o644)
    env = {**os.environ, NODE_CONFIG_ENV: str(node_file)}
    command = [sys.executable, "-m", "cni_hwol", "offload-status", "--json"]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(command, env=env, cwd=repo, capture_output=True, text=True, check=False)
    details = [check["detail"] for check in json.loads(done.stdout)["checks"]]
    assert f"0 in {tmp_path / 'state'}" in details and any("unix:/no/db" in d for d in details)
    node_file.write_text("{")
    done = subprocess.run(command, env=env, cwd=repo, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (1, "") and "not valid JSON" in done.stderr
