"""Device labels sealed on the user's side: who opens them, what their size tells, and
a label an earlier medchain stored in clear (a data directory from before)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from medchain.app import (
    LABEL_BLOCK_BYTES,
    MAX_LABEL_CHARS,
    Device,
    DeviceKind,
    DeviceState,
    RegisterDeviceArgs,
    Role,
    registration_message,
    sealed_label,
)
from medchain.app import _devices as devices_contract
from medchain.client import (
    InvalidLabel,
    LabelStatus,
    MedchainClient,
    read_label,
    seal_label,
)
from medchain.crypto import CONTENT_OVERHEAD, AccountKeys
from medchain.node import LocalChain
from medchain.types import decode, encode
from tests.api.harness import FakeNode, api_client, make_chain

PATIENT = AccountKeys.generate()
GUARDIAN = AccountKeys.generate()
STRANGER = AccountKeys.generate()
DEVICE = AccountKeys.generate().address
READERS = {k.address: k.encryption_public_key for k in (PATIENT, GUARDIAN)}


def _device(label: bytes, device: bytes = DEVICE) -> Device:
    return Device(
        device, b"\x01" * 32, PATIENT.address, DeviceKind.ECG, label,
        DeviceState.ACTIVE, 0, 0, False, PATIENT.address, 1, "", b"", 1,
    )  # fmt: skip


def test_the_patient_and_guardians_open_it_others_do_not() -> None:
    device = _device(seal_label("  insulin pump, Jane ", DEVICE, READERS))
    for keys in (PATIENT, GUARDIAN):
        label = read_label(device, keys)
        assert (label.status, label.text) == (LabelStatus.OPENED, "insulin pump, Jane")
        assert label.readers == tuple(sorted(READERS))
    for outsider in (STRANGER, None):
        label = read_label(device, outsider)
        assert (label.status, label.text, label.readers) == (
            LabelStatus.SEALED,
            "",
            tuple(sorted(READERS)),
        )
    assert b"Jane" not in device.label
    assert read_label(_device(b""), PATIENT).status is LabelStatus.NONE


def test_its_size_says_little_of_its_length() -> None:
    def size(text: str) -> int:
        found = sealed_label(seal_label(text, DEVICE, READERS))
        assert found is not None
        return len(found.ciphertext) - CONTENT_OVERHEAD

    assert {size("x"), size("left wrist"), size("y" * (LABEL_BLOCK_BYTES - 1))} == {
        LABEL_BLOCK_BYTES
    }
    assert size("z" * LABEL_BLOCK_BYTES) == 2 * LABEL_BLOCK_BYTES
    longest = "💉" * MAX_LABEL_CHARS  # 4 bytes of UTF-8 each
    assert read_label(_device(seal_label(longest, DEVICE, READERS)), PATIENT).text == longest


def test_a_label_moved_to_another_device_does_not_open() -> None:
    moved = _device(seal_label("left wrist", DEVICE, READERS), AccountKeys.generate().address)
    label = read_label(moved, PATIENT)
    assert (label.status, label.text) == (LabelStatus.DAMAGED, "")


@pytest.mark.parametrize(("text", "why"), [("", "may not be empty"), ("   ", "may not be empty")])
def test_bad_text_is_refused_before_sealing(text: str, why: str) -> None:
    with pytest.raises(InvalidLabel, match=why):
        seal_label(text, DEVICE, READERS)
    with pytest.raises(InvalidLabel, match=f"at most {MAX_LABEL_CHARS} characters"):
        seal_label("x" * (MAX_LABEL_CHARS + 1), DEVICE, READERS)


@dataclass(frozen=True, slots=True)
class _DeviceBefore:
    """`Device` as an earlier medchain stored it: its label a string, in clear (the
    fields added since stores of that schema are refused are as `Device` has them)."""

    device: bytes
    key: bytes
    patient: bytes
    kind: DeviceKind
    label: str
    state: DeviceState
    restricted_until: int
    strikes: int
    owner_may_lift: bool
    registered_by: bytes
    height: int
    reason: str
    evidence_hash: bytes
    audit_count: int
    registrar_org: str


def test_a_device_stored_before_labels_were_sealed_still_decodes() -> None:
    fields = dataclasses.astuple(_device(b""))[: len(dataclasses.fields(_DeviceBefore))]
    before = _DeviceBefore(*fields)  # without the fields added since
    before = dataclasses.replace(before, label="left wrist")
    found = decode(Device, encode(before))
    assert found.label == b"left wrist" and found.kind is DeviceKind.ECG
    label = read_label(found, None)
    assert (label.status, label.text) == (LabelStatus.IN_CLEAR, "left wrist")


def test_a_data_directory_from_before_opens_and_its_clear_labels_get_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier medchain stored a label as given (a string encodes as its UTF-8 bytes):
    with the label check lifted, a registration stores exactly that. The directory then
    opens with this medchain, the label reads as in clear, and the patient seals it."""
    home = tmp_path / "chain"
    validator = AccountKeys.generate()
    chain = LocalChain.create(home, make_chain(validator).genesis, validator)
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "Jane Roe")
    device = AccountKeys.generate()
    proof = device.sign(registration_message(chain.chain_id, patient.address))
    with monkeypatch.context() as before:
        before.setattr(devices_contract, "check_label", lambda *_: None)
        args = RegisterDeviceArgs(device.public_key, patient.address, DeviceKind.ECG, b"", proof)
        patient.send("devices.register", dataclasses.replace(args, label=b"insulin pump, Jane"))
    chain.close()

    chain = LocalChain.open(home)
    try:
        patient = MedchainClient(patient.keys, chain)
        stored = patient.device(device.address)
        assert read_label(stored, None).status is LabelStatus.IN_CLEAR
        body = api_client(FakeNode(chain)).get(f"/v1/devices/{device.address_text}").json()
        assert body["label"] == {"sealed": False, "readers": []}
        patient.relabel_device(device.address)  # seals the text it had
        sealed = patient.device(device.address)
        assert b"Jane" not in sealed.label
        assert patient.device_label(sealed).text == "insulin pump, Jane"
        assert read_label(sealed, None).status is LabelStatus.SEALED
    finally:
        chain.close()
