"""The VF's settings through its PF: the netconf keys, the RTM_SETLINK message, the EBUSY
retry, and DEL's restore of exactly what ADD changed (against a fake PF that records requests)."""

from __future__ import annotations

import dataclasses
import errno
import json

import pytest

from cni_hwol.cni.errors import DEVICE_ERROR, NETLINK_ERROR, CNIError
from cni_hwol.cni.netconf import parse_netconf
from cni_hwol.linux import vf_settings
from cni_hwol.linux.links import RTM_SETLINK, Link, Netlink, rtnl_codecs
from cni_hwol.linux.nlsock import NetlinkError
from cni_hwol.state import AttachmentKey, StateStore, read_state_file
from cni_hwol.verbs.pf_settings import apply_settings, restore_settings
from cni_hwol.verbs.port_rate import check_rate, restore_rate
from tests.unit.test_state import make_state

PF = Link(index=7, name="enp3s0f0np0", mac="02:00:00:00:00:aa", mtu=9000, up=True, parent_device=None)


class FakePf:
    """A PF whose RTM_SETLINK answers EBUSY `busy` times, then takes the request."""

    def __init__(self, busy: int = 0) -> None:
        self.busy = busy
        self.sent: list[tuple[int, dict]] = []
        self.real = Netlink.__new__(Netlink)
        self.real._ifinfmsg, self.real._ifaddrmsg, self.real._rtmsg = rtnl_codecs()  # the real codecs
        self.sock = self

    def _link_msg(self, *args, **kwargs):
        return self.real._link_msg(*args, **kwargs)

    def get(self, name: str) -> Link | None:
        return PF if name == PF.name else None

    def request(self, msg, msg_type: int, flags: int) -> list:
        msg.encode()
        decoded = type(msg)(msg.data)
        decoded.decode()
        (info,) = decoded.get_attr("IFLA_VFINFO_LIST").get_attrs("IFLA_VF_INFO")
        self.sent.append((msg_type, decoded["index"], {name: dict(value) for name, value in info["attrs"]}))
        if self.busy:
            self.busy -= 1
            raise NetlinkError(errno.EBUSY)
        return []


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(vf_settings, "EBUSY_PAUSE_SECONDS", 0)


def test_one_setlink_on_the_pf_carries_every_setting_for_that_vf():
    pf = FakePf()
    changes = {"mac": "02:00:00:00:13:03", "spoofchk": False, "trust": True, "link_state": "disable"}
    vf_settings.set_vf(pf, PF.name, PF.index, 3, changes)
    ((msg_type, index, attrs),) = pf.sent
    assert (msg_type, index) == (RTM_SETLINK, PF.index)
    assert attrs["IFLA_VF_MAC"]["vf"] == 3 and attrs["IFLA_VF_MAC"]["mac"] == "02:00:00:00:13:03"
    assert attrs["IFLA_VF_SPOOFCHK"] == {"vf": 3, "spoofchk": 0}
    assert attrs["IFLA_VF_TRUST"] == {"vf": 3, "trust": 1}
    assert attrs["IFLA_VF_LINK_STATE"] == {"vf": 3, "link_state": 2}  # IFLA_VF_LINK_STATE_DISABLE


def test_ebusy_right_after_a_move_is_retried():
    pf = FakePf(busy=3)
    vf_settings.set_vf(pf, PF.name, PF.index, 1, {"mac": "02:00:00:00:00:01"})
    assert len(pf.sent) == 4


def test_ebusy_that_does_not_pass_is_a_clear_netlink_error():
    pf = FakePf(busy=vf_settings.EBUSY_RETRIES + 5)
    with pytest.raises(CNIError) as caught:
        vf_settings.set_vf(pf, PF.name, PF.index, 1, {"mac": "02:00:00:00:00:01"})
    assert caught.value.code == NETLINK_ERROR
    assert "cannot set mac 02:00:00:00:00:01 on VF 1 through PF enp3s0f0np0" in caught.value.msg
    assert len(pf.sent) == vf_settings.EBUSY_RETRIES + 1


def test_the_netconf_keys_as_sriov_cni_spells_them():
    conf = parse_netconf(
        json.dumps(
            {"cniVersion": "1.0.0", "name": "n", "spoofchk": "off", "trust": "on", "link_state": "auto"}
        ).encode()
    )
    assert conf.vf_settings == {"spoofchk": False, "trust": True, "link_state": "auto"}
    assert parse_netconf(b'{"cniVersion": "1.0.0", "name": "n"}').vf_settings == {}


def attachment(tmp_path, holder: AttachmentKey | None):
    store = StateStore(str(tmp_path))
    state = make_state(
        pf_netdev=PF.name,
        vf_admin_before={"mac": "00:00:00:00:00:00", "spoofchk": True, "trust": False, "link_state": None},
        vf_admin_set={"mac": "02:00:00:00:00:01", "spoofchk": True, "trust": True, "link_state": "enable"},
    )
    if holder is not None:
        store.claim_device(state.device_id, holder)
    return store, state


def test_del_restores_exactly_what_add_changed(tmp_path):
    store, state = attachment(tmp_path, holder=make_state().key)
    pf = FakePf()
    restore_settings(pf, store, state)
    ((_, _, attrs),) = pf.sent
    # spoofchk was already on (not changed); link_state was not reported before (nothing to go back to)
    assert set(attrs) == {"IFLA_VF_MAC", "IFLA_VF_TRUST"}
    assert attrs["IFLA_VF_MAC"]["mac"] == "00:00:00:00:00:00"
    assert attrs["IFLA_VF_TRUST"] == {"vf": state.vf_index, "trust": 0}


def test_add_sends_only_the_settings_the_pf_does_not_already_report(tmp_path):
    """An operator NAD's neutral values ("spoofchk": "on", "link_state": "auto") are not sent: mlx5
    refuses any link_state in switchdev mode. A setting the PF did not report is sent."""
    _, state = attachment(tmp_path, holder=None)
    pf = FakePf()
    apply_settings(pf, state)
    ((_, _, attrs),) = pf.sent
    assert set(attrs) == {"IFLA_VF_MAC", "IFLA_VF_TRUST", "IFLA_VF_LINK_STATE"}  # spoofchk was on already

    reported = {"mac": "02:00:00:00:00:01", "spoofchk": True, "trust": False, "link_state": "auto"}
    neutral = dataclasses.replace(
        state, vf_admin_before=reported, vf_admin_set={**reported, "mac": "02:00:00:00:00:02"}
    )
    apply_settings(pf, neutral)
    assert set(pf.sent[1][2]) == {"IFLA_VF_MAC"}
    apply_settings(pf, dataclasses.replace(state, vf_admin_before=reported, vf_admin_set=reported))
    assert len(pf.sent) == 2  # nothing differs: no request at all


def test_del_leaves_a_vf_now_claimed_by_another_attachment_alone(tmp_path):
    store, state = attachment(tmp_path, holder=AttachmentKey("hwol", "other-pod", "net1"))
    pf = FakePf()
    restore_settings(pf, store, state)
    assert pf.sent == []


def test_a_format_1_state_file_loads_with_nothing_set_through_the_pf(tmp_path):
    body = {k: v for k, v in make_state().__dict__.items() if k not in ("pf_netdev", "vf_admin_before", "vf_admin_set")}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**body, "format": 1}))
    state = read_state_file(path)
    assert (state.pf_netdev, state.vf_admin_before, state.vf_admin_set) == ("", None, {})
    pf = FakePf()
    restore_settings(pf, StateStore(str(tmp_path)), state)
    assert pf.sent == []


def rates(**keys) -> dict:
    return parse_netconf(json.dumps({"cniVersion": "1.0.0", "name": "n", **keys}).encode()).tx_rate


def test_rates_in_mbps_and_the_bandwidth_capability_become_devlink_bytes_per_second():
    assert rates(min_tx_rate=10, max_tx_rate=100) == {"tx_share": 1_250_000, "tx_max": 12_500_000}
    assert rates(max_tx_rate=100) == {"tx_max": 12_500_000}  # either key may come alone
    assert rates(min_tx_rate=10) == {"tx_share": 1_250_000}
    assert rates(runtimeConfig={"bandwidth": {"egressRate": 80_000_000}}) == {"tx_max": 10_000_000}
    # both: the tighter limit
    assert rates(max_tx_rate=50, runtimeConfig={"bandwidth": {"egressRate": 800_000_000}}) == {"tx_max": 6_250_000}
    assert rates() == {}


class FakeDevlink:
    """Devlink's rate methods over a dict; records every set."""

    rates: dict = {}
    sets: list = []

    absent = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def close(self):
        pass

    def port_rate(self, handle, index):
        return dict(self.rates[(handle, index)])

    def set_port_rate(self, handle, index, rate):
        self.sets.append((handle, index, dict(rate)))
        self.rates[(handle, index)].update(rate)


@pytest.fixture
def fake_devlink():
    from cni_hwol.hw import devlink

    FakeDevlink.rates = {("netdevsim/netdevsim1", 131): {"tx_share": 0, "tx_max": 5}}
    FakeDevlink.sets = []
    devlink.use_devlink_source(FakeDevlink)
    yield FakeDevlink
    devlink.use_devlink_source(devlink.Devlink)


def rated_attachment(tmp_path, holder: AttachmentKey):
    store = StateStore(str(tmp_path))
    state = make_state(
        devlink_port="netdevsim/netdevsim1/131",
        port_rate_before={"tx_share": 0, "tx_max": 5},
        port_rate_set={"tx_share": 1_250_000, "tx_max": 5},
    )
    store.claim_device(state.device_id, holder)
    return store, state


def test_del_puts_back_the_devlink_rate_add_changed(tmp_path, fake_devlink):
    store, state = rated_attachment(tmp_path, make_state().key)
    restore_rate(store, state)
    assert fake_devlink.sets == [("netdevsim/netdevsim1", 131, {"tx_share": 0})]  # tx_max was not changed


def test_del_leaves_the_rate_of_a_vf_claimed_by_another_attachment(tmp_path, fake_devlink):
    store, state = rated_attachment(tmp_path, AttachmentKey("hwol", "other-pod", "net1"))
    restore_rate(store, state)
    assert fake_devlink.sets == []


def test_check_sees_a_devlink_rate_changed_behind_its_back(fake_devlink):
    state = make_state(devlink_port="netdevsim/netdevsim1/131", port_rate_set={"tx_max": 5})
    check_rate(state)
    fake_devlink.rates[("netdevsim/netdevsim1", 131)]["tx_max"] = 7
    with pytest.raises(CNIError) as caught:
        check_rate(state)
    assert caught.value.msg == "devlink port netdevsim/netdevsim1/131 has tx_max 7, ADD set 5"
    assert caught.value.code == DEVICE_ERROR


def test_check_sees_a_pf_setting_changed_behind_its_back(monkeypatch):
    from cni_hwol.verbs import pf_settings

    state = make_state(pf_netdev=PF.name, vf_admin_set={"mac": "02:00:00:00:00:01", "trust": True})
    reported = vf_settings.VfSettings(mac="02:00:00:00:00:01", spoofchk=True, trust=True, link_state="auto")
    monkeypatch.setattr(pf_settings, "read_vf", lambda host, pf, vf: reported)
    pf_settings.check_settings(None, state)
    reported = vf_settings.VfSettings(mac="02:00:00:00:00:01", spoofchk=True, trust=False, link_state="auto")
    with pytest.raises(CNIError) as caught:
        pf_settings.check_settings(None, state)
    assert caught.value.msg == f"VF {state.vf_index} of {PF.name} has trust False, ADD set True"
    assert caught.value.code == DEVICE_ERROR
