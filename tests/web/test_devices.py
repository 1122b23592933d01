"""A patient's devices as the pages show them: the label opened for the patient and
sealed to anyone else, the state in force, the audit trail with who did what, and the
guardians; another patient's device is refused."""

from __future__ import annotations

import pytest

from medchain.app import DeviceState
from medchain.client import HttpChain
from medchain.crypto import format_address
from medchain.web._devices import NoSuchDevice, device_trail, devices_page
from tests.web.conftest import DOCTOR_NAME, SECOND_DOCTOR_NAME, Ward
from tests.web.wearer import wear_device


def test_the_patient_sees_their_devices_labels_states_and_guardians(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain).keys.address
    patient = ward.client(ward.patient)
    patient.set_device_state(band, DeviceState.RESTRICTED, "lost on the bus")
    patient.add_guardian(ward.second.address)
    found = devices_page(patient, ward.patient.address)
    (row,) = found.devices
    assert (row.address, row.kind, row.label) == (format_address(band), "heart rate", "a band")
    assert (row.state, row.active, row.strikes) == ("restricted", False, 0)
    (on_chain,) = patient.chain.devices_of(ward.patient.address)
    assert row.registered.endswith(f"at block {on_chain.height}")
    assert [(g.name, g.address) for g in found.guardians] == [
        (SECOND_DOCTOR_NAME, format_address(ward.second.address))
    ]
    (sealed,) = devices_page(ward.client(ward.stranger), ward.patient.address).devices
    assert sealed.label == "label sealed for the patient and their guardians"


def test_a_devices_trail_says_who_did_what(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain).keys.address
    patient = ward.client(ward.patient)
    patient.set_device_state(band, DeviceState.RESTRICTED, "lost on the bus")
    patient.set_device_state(band, DeviceState.ACTIVE, "found it")
    found = device_trail(patient, ward.patient.address, band)
    assert [(r.seq, r.action, r.state, r.reason) for r in found.trail] == [
        ("0", "registered", "active", ""),
        ("1", "state changed", "restricted", "lost on the bus"),
        ("2", "state changed", "active", "found it"),
    ]
    assert [r.by for r in found.trail[1:]] == ["you", "you"]
    assert found.device.active
    assert DOCTOR_NAME not in {r.by for r in found.trail}


def test_another_patients_device_is_refused(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain).keys.address
    stranger = ward.client(ward.stranger)
    with pytest.raises(NoSuchDevice, match="is not one of this patient's devices"):
        device_trail(stranger, ward.stranger.address, band)
