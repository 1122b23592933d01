"""What the owner side (the patient, or a guardian acting for them) may do to a device,
as its page offers it, and the posted forms read. Suspending is the chain's
`restricted` (readings refused), which the owner side may lift again; retiring is
`banned`, which only the organisation that registered the device can lift, so the
page asks for a confirmation first; relabelling seals a new label."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from medchain.app import MAX_LABEL_CHARS, MAX_REASON_CHARS, Device, DeviceState
from medchain.web._pages import InvalidForm

CONFIRMED = "yes"
"""The `confirm` field's value on the retire page's form."""
RELABELLED = "relabel"


@dataclass(frozen=True)
class DeviceAction:
    name: str
    """The form's `action` value, and the `done` key of the flash after it."""
    button: str
    state: DeviceState
    done: str
    """What the page says once the chain committed it."""
    irreversible: bool = False


SUSPEND = DeviceAction(
    "suspend", "Suspend", DeviceState.RESTRICTED,
    "The device is suspended: its readings are refused until you resume it.",
)  # fmt: skip
RESUME = DeviceAction(
    "resume", "Resume", DeviceState.ACTIVE, "The device is active again: its readings count."
)
RETIRE = DeviceAction(
    "retire", "Retire for good", DeviceState.BANNED,
    "The device is retired: its readings are refused for good.", irreversible=True,
)  # fmt: skip
ACTIONS = {a.name: a for a in (SUSPEND, RESUME, RETIRE)}
DONE = {**{a.name: a.done for a in ACTIONS.values()}, RELABELLED: "The device has its new label."}


def owner_actions(device: Device, height: int) -> tuple[tuple[DeviceAction, ...], str]:
    """The actions the owner side may take in the device's state in force at `height`,
    and why any other is withheld ("" when none is): the chain lets the owner side
    lift only a restriction it set itself, and never a ban."""
    now = device.state_at(height)
    if now is DeviceState.BANNED:
        return (), "The device is retired; only the organisation that registered it may lift that."
    if now is DeviceState.ACTIVE:
        return (SUSPEND, RETIRE), ""
    if device.owner_may_lift:
        return (RESUME, RETIRE), ""
    if device.restricted_until:
        why = (
            f"The penalty rule restricted the device until block {device.restricted_until}; "
            "it is active again after that, or when the organisation that registered it lifts it."
        )
    else:
        why = "The organisation that registered the device restricted it; only it may lift that."
    return (RETIRE,), why


def state_change_from_form(form: Mapping[str, str]) -> tuple[DeviceAction, str]:
    """The action and the reason a posted state form names; retiring needs the retire
    page's confirmation."""
    action = ACTIONS.get(form.get("action", ""))
    if action is None:
        raise InvalidForm("choose what to do with the device: suspend, resume or retire it")
    reason = form.get("reason", "").strip()
    if not reason:
        raise InvalidForm("give the reason: the device's audit trail keeps it")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidForm(f"the reason is limited to {MAX_REASON_CHARS} characters")
    if action.irreversible and form.get("confirm") != CONFIRMED:
        raise InvalidForm("retiring a device cannot be undone: confirm it on the retire page")
    return action, reason


def label_from_form(form: Mapping[str, str]) -> str:
    """The new label a posted relabel form names."""
    label = form.get("label", "").strip()
    if not label:
        raise InvalidForm("give the device's new label, e.g. left wrist")
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidForm(f"a label is limited to {MAX_LABEL_CHARS} characters")
    return label
