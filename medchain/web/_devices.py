"""A patient's devices as the app's pages show them: each with its label (opened here
when sealed for this account), kind, the state in force and strikes; a device's audit
trail (registration, changes of state, strikes, and the penalty restrictions that
lapsed); and the patient's guardians, who manage their devices."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app import Device as ChainDevice
from medchain.app import DeviceAuditEntry, DeviceState, restriction_lapses
from medchain.client import LabelStatus, MedchainClient
from medchain.crypto import format_address
from medchain.types import MedchainError
from medchain.web._device_actions import DeviceAction, owner_actions
from medchain.web._records import Party, name_of

_LABELS = {
    LabelStatus.NONE: "no label",
    LabelStatus.SEALED: "label sealed for the patient and their guardians",
    LabelStatus.DAMAGED: "its label does not open: give it a new one",
}


class NoSuchDevice(MedchainError):
    """A device address this chain does not know, or of another patient."""


@dataclass(frozen=True)
class DeviceRow:
    address: str
    kind: str
    label: str
    state: str
    """The state in force, in words (a restriction with its last height)."""
    strikes: int
    registered: str
    """By whom and at which height, in words."""
    active: bool
    actions: tuple[DeviceAction, ...] = ()
    """What the owner side may do to it now (`owner_actions`)."""
    withheld: str = ""
    """Why the owner side may not lift its state, if it may not."""


@dataclass(frozen=True)
class TrailRow:
    seq: str
    height: int
    action: str
    by: str
    state: str
    strikes: int
    reason: str


@dataclass(frozen=True)
class DevicesPage:
    devices: tuple[DeviceRow, ...]
    guardians: tuple[Party, ...]
    height: int


def _who(client: MedchainClient, address: bytes) -> str:
    return "you" if address == client.address else name_of(client, address)


def _label(client: MedchainClient, device: ChainDevice) -> str:
    label = client.device_label(device)
    if label.status in (LabelStatus.OPENED, LabelStatus.IN_CLEAR):
        return label.text
    return _LABELS[label.status]


def _state(state: DeviceState, restricted_until: int) -> str:
    if state is DeviceState.RESTRICTED and restricted_until:
        return f"restricted until block {restricted_until}"
    return state.value


def _row(client: MedchainClient, device: ChainDevice, height: int) -> DeviceRow:
    state = device.state_at(height)
    actions, withheld = owner_actions(device, height)
    return DeviceRow(
        address=format_address(device.device),
        kind=device.kind.value.replace("_", " "),
        label=_label(client, device),
        state=_state(state, device.restricted_until),
        strikes=device.strikes,
        registered=f"by {_who(client, device.registered_by)} at block {device.height}",
        active=state is DeviceState.ACTIVE,
        actions=actions,
        withheld=withheld,
    )


def devices_page(client: MedchainClient, patient: bytes) -> DevicesPage:
    """The patient's devices in registration order, and their guardians."""
    height = client.chain.height
    devices = tuple(_row(client, d, height) for d in client.chain.devices_of(patient))
    guardians = tuple(
        Party(name_of(client, g), format_address(g), "guardian")
        for g in client.chain.guardians_of(patient)
    )
    return DevicesPage(devices, guardians, height)


@dataclass(frozen=True)
class DeviceTrail:
    device: DeviceRow
    trail: tuple[TrailRow, ...]


def device_trail(client: MedchainClient, patient: bytes, address: bytes) -> DeviceTrail:
    """The device's row and its audit trail, oldest first; NoSuchDevice unless it is
    one of `patient`'s."""
    device = client.chain.device(address)
    if device is None or device.patient != patient:
        raise NoSuchDevice(f"{format_address(address)} is not one of this patient's devices")
    height = client.chain.height
    entries = client.chain.device_audit(address)
    rows: list[TrailRow] = []
    for entry, lapsed in zip(entries, restriction_lapses(entries, height), strict=True):
        rows.append(_trail_row(client, entry))
        if lapsed:
            ended = f"the restriction until block {entry.restricted_until} ended"
            rows.append(
                TrailRow("", lapsed, "lapsed", "(penalty rule)", "active", entry.strikes, ended)
            )
    return DeviceTrail(_row(client, device, height), tuple(rows))


def _trail_row(client: MedchainClient, entry: DeviceAuditEntry) -> TrailRow:
    by = _who(client, entry.actor)
    if entry.on_behalf:
        by += f" for {_who(client, entry.on_behalf)}"
    return TrailRow(
        str(entry.seq),
        entry.height,
        entry.action.value.replace("_", " "),
        by,
        _state(entry.state, entry.restricted_until),
        entry.strikes,
        entry.reason,
    )
