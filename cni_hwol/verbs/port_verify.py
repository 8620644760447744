"""The port options read back: the ofport ADD asked for, and CHECK's comparison of the rows."""

from __future__ import annotations

from cni_hwol.cni.errors import OVS_ERROR, TRY_AGAIN_LATER, CNIError
from cni_hwol.ovsdb.client import OvsdbClient, OvsdbError, OvsdbUnavailable
from cni_hwol.ovsdb.port_options import OfportMismatch, PortOptions, verify_ofport
from cni_hwol.state import AttachmentState
from cni_hwol.verbs.common import ovs_failure


def verify_assigned_ofport(ovsdb: OvsdbClient, state: AttachmentState) -> None:
    """OVS silently numbers a port otherwise when its ofport_request is taken: check what it got
    (on ADD's own OVSDB connection)."""
    wanted = PortOptions.from_state(state.port_options or {}).ofport_request
    if wanted is None:
        return
    try:
        verify_ofport(ovsdb, state.representor, wanted)
    except OfportMismatch as exc:
        # Not numbered yet (ovs-vswitchd reconnecting, as after an OVS restart): a retry may
        # work (11). Numbered otherwise: OVS gave the number away, a retry will not (101).
        code = TRY_AGAIN_LATER if exc.got is None else OVS_ERROR
        raise CNIError(code, f"'ofport_request' {wanted} not honoured: {exc}") from None
    except (OvsdbError, OvsdbUnavailable) as exc:
        raise ovs_failure(f"reading the ofport of {state.representor}", exc) from None


def check_port_options(state: AttachmentState, found: tuple[PortOptions, int | None] | None) -> None:
    """CHECK: the port's tag, trunks, VLAN mode and ofport (as read_port_options found them) are what ADD set."""
    if state.port_options is None:
        return  # a state file from before these options were recorded
    expected = PortOptions.from_state(state.port_options)
    if found is None:
        raise CNIError(OVS_ERROR, f"OVS port {state.representor} has no Port or Interface row")
    actual, ofport = found
    port = state.representor
    for what, want, got in (
        ("tag", expected.tag, actual.tag),
        ("trunks", list(expected.trunks), list(actual.trunks)),
        ("vlan_mode", expected.vlan_mode, actual.vlan_mode),
        ("ofport_request", expected.ofport_request, actual.ofport_request),
    ):
        if want != got:
            raise CNIError(OVS_ERROR, f"OVS port {port} has {what} {got}, ADD set {want}")
    if expected.ofport_request is not None and ofport != expected.ofport_request:
        raise CNIError(OVS_ERROR, f"OVS port {port} has ofport {ofport}, ADD asked for {expected.ofport_request}")
