"""What the owner side is offered for a device in each state, and the posted forms
read: a missing action or reason, a retire without its confirmation and an overlong
label are refused before anything is sent."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medchain.app import MAX_LABEL_CHARS, MAX_REASON_CHARS, Device, DeviceKind, DeviceState
from medchain.web import InvalidForm
from medchain.web._device_actions import (
    RESUME,
    RETIRE,
    SUSPEND,
    label_from_form,
    owner_actions,
    state_change_from_form,
)

ACTIVE = Device(
    device=b"\x01" * 20, key=b"\x02" * 32, patient=b"\x03" * 20, kind=DeviceKind.THERMOMETER,
    label=b"", state=DeviceState.ACTIVE, restricted_until=0, strikes=0, owner_may_lift=False,
    registered_by=b"\x03" * 20, height=1, reason="", evidence_hash=b"", audit_count=1,
)  # fmt: skip


def test_an_active_device_may_be_suspended_or_retired() -> None:
    assert owner_actions(ACTIVE, 5) == ((SUSPEND, RETIRE), "")


def test_the_owner_resumes_only_what_it_suspended() -> None:
    mine = replace(ACTIVE, state=DeviceState.RESTRICTED, owner_may_lift=True)
    theirs = replace(ACTIVE, state=DeviceState.RESTRICTED)
    penalty = replace(theirs, restricted_until=9)
    assert owner_actions(mine, 5) == ((RESUME, RETIRE), "")
    assert owner_actions(theirs, 5)[0] == (RETIRE,)
    assert "only it may lift that" in owner_actions(theirs, 5)[1]
    assert "until block 9" in owner_actions(penalty, 5)[1]
    assert owner_actions(penalty, 10) == ((SUSPEND, RETIRE), "")  # the penalty lapsed


def test_a_retired_device_offers_nothing() -> None:
    actions, why = owner_actions(replace(ACTIVE, state=DeviceState.BANNED), 5)
    assert actions == () and "only the organisation that registered it" in why


def test_a_state_form_needs_an_action_a_reason_and_for_retiring_a_confirmation() -> None:
    assert state_change_from_form({"action": "suspend", "reason": " lost "}) == (SUSPEND, "lost")
    retire = {"action": "retire", "reason": "broken", "confirm": "yes"}
    assert state_change_from_form(retire) == (RETIRE, "broken")
    refused = (
        ({"action": "explode", "reason": "x"}, "suspend, resume or retire"),
        ({"action": "suspend", "reason": "  "}, "give the reason"),
        ({"action": "suspend", "reason": "x" * (MAX_REASON_CHARS + 1)}, "limited to"),
        ({"action": "retire", "reason": "broken"}, "confirm it on the retire page"),
    )
    for form, message in refused:
        with pytest.raises(InvalidForm, match=message):
            state_change_from_form(form)


def test_a_label_is_given_and_not_too_long() -> None:
    assert label_from_form({"label": " left wrist "}) == "left wrist"
    with pytest.raises(InvalidForm, match="give the device's new label"):
        label_from_form({"label": ""})
    with pytest.raises(InvalidForm, match="limited to"):
        label_from_form({"label": "x" * (MAX_LABEL_CHARS + 1)})
