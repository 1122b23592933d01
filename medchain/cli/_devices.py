"""`medchain devices …` and `medchain gateways …`: medical devices bound to patients,
their guardians and penalties, who the patient shares their vitals with, and the edge
gateways hospitals trust to report them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medchain.app import Device, DeviceAuditEntry, DeviceKind, DeviceState, restriction_lapses
from medchain.cli._common import (
    Chain,
    address_arg,
    choice,
    console,
    load_key_file,
    ok,
    on_chain,
    patient_arg,
    show_address,
)
from medchain.cli._options import (
    AddressArg,
    KeyOption,
    PatientKeyOption,
    PatientOption,
    ReaderKeyOption,
    SignerKeyOption,
    address_argument,
    key_option,
)
from medchain.client import DeviceLabel, LabelStatus, read_label
from medchain.types import MedchainError


def _read_evidence(path: Path | None) -> bytes:
    if path is None:
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MedchainError(f"cannot read the evidence file {path}: {exc.strerror}") from exc


# -- devices --------------------------------------------------------------------------


@on_chain
def devices_register(
    where: Chain,
    key: SignerKeyOption,
    device_key: Annotated[
        Path,
        typer.Option(
            "--device-key",
            help="The device's key file (`medchain keys new`): it signs the proof that you "
            "hold the device.",
            dir_okay=False,
        ),
    ],
    patient: Annotated[str, typer.Option(help="Address of the patient the device serves.")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(k.value for k in DeviceKind)}.")],
    label: Annotated[
        str,
        typer.Option(
            help="A name for people, e.g. 'left wrist'; sealed for the patient and their "
            "guardians (nobody else reads it)."
        ),
    ],
) -> None:
    """Bind a device to a patient; prints the device's address (its id)."""
    if not label.strip():
        raise MedchainError("--label is empty; give the device a name, e.g. 'left wrist'")
    parsed = choice(DeviceKind, kind, "device kind")
    device_keys = load_key_file(device_key)
    with where.client(key) as client:
        client.register_device(device_keys, address_arg(patient), parsed, label)
    ok(f"{parsed.value} device {label!r} registered for {patient}")
    console.print(device_keys.address_text)


@on_chain
def devices_relabel(
    where: Chain,
    address: AddressArg,
    key: SignerKeyOption,
    label: Annotated[
        str | None,
        typer.Option(
            help="The new label, sealed for the patient and their guardians. Leave it out "
            "to seal the current one again for the guardians of now."
        ),
    ] = None,
) -> None:
    """Give a device a new label, or seal its label again (after the guardians changed,
    or for a label an earlier medchain stored in clear)."""
    with where.client(key) as client:
        client.relabel_device(address_arg(address), label)
    ok(f"device {address} relabelled; only the patient and their guardians read the label")


def _label_text(label: DeviceLabel) -> str:
    """How a label reads for people: its text where the reader may see it."""
    if label.status is LabelStatus.OPENED:
        return label.text
    if label.status is LabelStatus.IN_CLEAR:
        return f"{label.text} (stored in clear: `medchain devices relabel` seals it)"
    if label.status is LabelStatus.SEALED:
        return f"(sealed for {len(label.readers)}: the patient and guardians)"
    if label.status is LabelStatus.DAMAGED:
        return "(sealed for you but does not open: relabel the device)"
    return "(none)"


@on_chain
def devices_show(where: Chain, address: AddressArg, key: ReaderKeyOption = None) -> None:
    """A device: its patient, kind, label (with the patient's or a guardian's key), state
    in force, strikes and who registered it."""
    raw = address_arg(address)
    keys = None if key is None else load_key_file(key)
    with where.backend() as chain:
        device = chain.device(raw)
        if device is None:
            raise MedchainError(
                f"no device {address} on this chain; check the address, or register it "
                "with `medchain devices register`"
            )
        height = chain.height
    state = device.state_at(height)
    console.print(f"device:      {address}  ({device.kind.value})")
    console.print(f"label:       {_label_text(read_label(device, keys))}")
    console.print(f"patient:     {show_address(device.patient)}")
    console.print(f"state:       {_state_text(device, height)}")
    if device.reason:
        console.print(f"reason:      {device.reason}")
    console.print(f"strikes:     {device.strikes}")
    if state is DeviceState.RESTRICTED and device.owner_may_lift:
        console.print("             the patient or a guardian may lift it")
    console.print(f"registered:  by {show_address(device.registered_by)} at height {device.height}")
    console.print(f"key:         {device.key.hex()}")


def _state_text(device: Device, height: int) -> str:
    state = device.state_at(height)
    if state is DeviceState.RESTRICTED and device.restricted_until:
        return f"restricted until height {device.restricted_until} (now {height})"
    return state.value


@on_chain
def devices_list(where: Chain, patient: PatientOption, key: ReaderKeyOption = None) -> None:
    """The patient's devices, in registration order; their labels with the patient's or
    a guardian's key."""
    keys = None if key is None else load_key_file(key)
    with where.backend() as chain:
        devices = chain.devices_of(patient_arg(chain, patient))
        height = chain.height
    table = Table("device", "kind", "label", "state", "strikes", title=f"devices of {patient}")
    for device in devices:
        table.add_row(
            show_address(device.device),
            device.kind.value,
            _label_text(read_label(device, keys)),
            _state_text(device, height),
            str(device.strikes),
        )
    console.print(table)


@on_chain
def devices_audit(where: Chain, address: AddressArg) -> None:
    """The device's audit trail: registration, changes of state, strikes."""
    raw = address_arg(address)
    with where.backend() as chain:
        if chain.device(raw) is None:
            raise MedchainError(f"no device {address} on this chain; check the address")
        entries = chain.device_audit(raw)
        height = chain.height
    console.print(device_audit_table(entries, height))


def device_audit_table(entries: list[DeviceAuditEntry], height: int) -> Table:
    """The trail as recorded, with a row for each penalty restriction that lapsed (up to
    `height`): the lapse writes no entry, but it is a change of state."""
    table = Table("#", "height", "action", "by", "state", "strikes", "reason", title="audit trail")
    for e, lapsed in zip(entries, restriction_lapses(entries, height), strict=True):
        state = e.state.value
        if e.state is DeviceState.RESTRICTED and e.restricted_until:
            state += f" until {e.restricted_until}"
        table.add_row(
            str(e.seq),
            str(e.height),
            e.action.value,
            show_address(e.actor),
            state,
            str(e.strikes),
            e.reason,
        )
        if lapsed:
            table.add_row(
                "",
                str(lapsed),
                "lapsed",
                "(penalty rule)",
                DeviceState.ACTIVE.value,
                str(e.strikes),
                f"the restriction until {e.restricted_until} ended",
            )
    return table


@on_chain
def devices_state(
    where: Chain,
    address: AddressArg,
    state: Annotated[
        str,
        typer.Argument(
            help=f"One of: {', '.join(s.value for s in DeviceState)}.", show_default=False
        ),
    ],
    reason: Annotated[
        str,
        typer.Option(
            help="Why; kept in clear in the device's audit trail, which anyone can read: "
            "no names or health details."
        ),
    ],
    key: KeyOption,
    evidence_file: Annotated[
        Path | None,
        typer.Option(
            "--evidence-file", help="Evidence to hash on chain (at most 16 KiB).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Patient, guardian or hospital: restrict, ban or re-activate a device. Only a
    hospital lifts a penalty or a ban."""
    parsed = choice(DeviceState, state, "device state")
    evidence = _read_evidence(evidence_file)
    with where.client(key) as client:
        client.set_device_state(address_arg(address), parsed, reason, evidence)
    ok(f"device {address} is now {parsed.value}")


# -- guardians --------------------------------------------------------------------------


@on_chain
def guardian_add(
    where: Chain,
    guardian: Annotated[str, address_argument("The guardian's address.")],
    key: PatientKeyOption,
) -> None:
    """Patient: let a registered account manage your devices (it gets no record access);
    your devices' labels are sealed again so that it reads them too."""
    with where.client(key) as client:
        client.add_guardian(address_arg(guardian))
        resealed = client.reseal_device_labels()
    ok(f"{guardian} may now manage your devices")
    if resealed:
        console.print(f"{len(resealed)} device label(s) sealed again for your guardians")


@on_chain
def guardian_remove(
    where: Chain,
    guardian: Annotated[str, address_argument("The guardian's address.")],
    key: PatientKeyOption,
) -> None:
    """Patient: stop a guardian managing your devices; your devices' labels are sealed
    again without them (what they read before, they keep)."""
    with where.client(key) as client:
        client.remove_guardian(address_arg(guardian))
        resealed = client.reseal_device_labels()
    ok(f"{guardian} no longer manages your devices")
    if resealed:
        console.print(f"{len(resealed)} device label(s) sealed again for your guardians")


@on_chain
def guardian_list(where: Chain, patient: PatientOption) -> None:
    """The patient's guardians."""
    with where.backend() as chain:
        guardians = chain.guardians_of(patient_arg(chain, patient))
    for guardian in guardians:
        console.print(show_address(guardian))


# -- vitals readers ---------------------------------------------------------------------


@on_chain
def share_vitals(
    where: Chain,
    reader: Annotated[str, address_argument("The reader's address.")],
    key: PatientKeyOption,
) -> None:
    """Patient: let a registered account read your device readings (`medchain reading
    list`), those committed from now on: gateways seal each batch for its readers of the
    moment."""
    with where.client(key) as client:
        client.share_vitals(address_arg(reader))
    ok(f"{reader} may now read your vitals committed from now on")


@on_chain
def unshare_vitals(
    where: Chain,
    reader: Annotated[str, address_argument("The reader's address.")],
    key: PatientKeyOption,
) -> None:
    """Patient: stop sealing your readings for a reader (what was sealed for them before
    stays readable to them)."""
    with where.client(key) as client:
        client.unshare_vitals(address_arg(reader))
    ok(f"{reader} no longer gets your vitals committed from now on")


@on_chain
def vitals_readers(where: Chain, patient: PatientOption) -> None:
    """Who the patient shares their vitals with (besides their guardians)."""
    with where.backend() as chain:
        readers = chain.vitals_readers_of(patient_arg(chain, patient))
    for reader in readers:
        console.print(show_address(reader))


# -- gateways ---------------------------------------------------------------------------


@on_chain
def gateways_register(
    where: Chain,
    address: AddressArg,
    label: Annotated[
        str, typer.Option(help="A name for people, e.g. 'ward 3 hub'; public, as the gateway is.")
    ],
    key: Annotated[Path, key_option("The hospital's key file.")],
) -> None:
    """Hospital: trust a gateway account to report devices and commit batches of readings."""
    with where.client(key) as client:
        client.register_gateway(address_arg(address), label)
    ok(f"gateway {address} registered")


@on_chain
def gateways_revoke(
    where: Chain,
    address: AddressArg,
    key: Annotated[Path, key_option("The key of the hospital that registered it.")],
) -> None:
    """Hospital: revoke a gateway for good (give a replacement its own key)."""
    with where.client(key) as client:
        client.revoke_gateway(address_arg(address))
    ok(f"gateway {address} revoked")


@on_chain
def gateways_show(where: Chain, address: AddressArg) -> None:
    """A gateway: its label, hospital, whether it is active, batches committed."""
    raw = address_arg(address)
    with where.backend() as chain:
        gateway = chain.gateway(raw)
    if gateway is None:
        raise MedchainError(
            f"no gateway {address} on this chain; a hospital registers it with "
            "`medchain gateways register`"
        )
    console.print(f"gateway:     {address}  ({gateway.label!r})")
    console.print(f"hospital:    {show_address(gateway.registered_by)}")
    console.print(f"active:      {'yes' if gateway.active else 'no (revoked)'}")
    console.print(f"registered:  height {gateway.height}")
    console.print(f"batches:     {gateway.batch_count}")
