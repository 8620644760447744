import pytest

from cni_hwol.cni.env import parse_cni_args, parse_env, validate_ifname
from cni_hwol.cni.errors import INVALID_ENVIRONMENT, CNIError

BASE = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/var/run/netns/x",
    "CNI_IFNAME": "net1",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
}


def test_parses_a_complete_add_environment():
    env = parse_env({**BASE, "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;deviceID=0000:03:00.2"})
    assert env.command == "ADD"
    assert env.path == ("/opt/cni/bin", "/usr/lib/cni")
    assert env.args["K8S_POD_NAME"] == "web"
    assert env.args["deviceID"] == "0000:03:00.2"


@pytest.mark.parametrize("missing", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
def test_add_without_a_required_variable_is_code_4(missing):
    environ = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(CNIError) as err:
        parse_env(environ)
    assert err.value.code == INVALID_ENVIRONMENT
    assert missing in err.value.msg


@pytest.mark.parametrize("command", ["ADD", "CHECK", "DEL", "STATUS"])
def test_cni_path_is_optional_for_every_verb_but_gc(command):
    # CNI spec 1.1, "CNI operations": CNI_PATH is among each verb's optional parameters, GC's required.
    assert parse_env({k: v for k, v in BASE.items() if k != "CNI_PATH"} | {"CNI_COMMAND": command}).path == ()
    with pytest.raises(CNIError) as err:
        parse_env({"CNI_COMMAND": "GC"})
    assert err.value.code == INVALID_ENVIRONMENT and "CNI_PATH" in err.value.msg


def test_del_does_not_need_a_netns():
    env = parse_env({k: v for k, v in BASE.items() if k != "CNI_NETNS"} | {"CNI_COMMAND": "DEL"})
    assert env.netns == ""


def test_version_needs_nothing():
    assert parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"


@pytest.mark.parametrize("command", ["", "add", "DELETE", "ADD;rm"])
def test_unknown_command_is_rejected(command):
    with pytest.raises(CNIError):
        parse_env({**BASE, "CNI_COMMAND": command})


@pytest.mark.parametrize("name", ["eth0", "net1", "a" * 15, "vf-0.1", "é"])
def test_valid_ifnames(name):
    assert validate_ifname(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 16, "eth/0", "eth:0", "eth 0", "eth\t0", "é" * 8, "a\x01"])
def test_invalid_ifnames(name):
    with pytest.raises(CNIError) as err:
        validate_ifname(name)
    assert err.value.code == INVALID_ENVIRONMENT


@pytest.mark.parametrize("cid", ["../etc", "-abc", "a/b", "a b", "", "x" * 200])
def test_hostile_container_ids_are_rejected(cid):
    with pytest.raises(CNIError):
        parse_env({**BASE, "CNI_CONTAINERID": cid})


def test_relative_netns_is_rejected():
    with pytest.raises(CNIError):
        parse_env({**BASE, "CNI_NETNS": "netns/x"})


def test_cni_args_without_equals_is_an_error():
    with pytest.raises(CNIError):
        parse_cni_args("IgnoreUnknown=1;bogus")
    assert parse_cni_args("a=1;;b=x=y") == {"a": "1", "b": "x=y"}
