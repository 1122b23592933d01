"""The vitals sharing page's data: the patient's readers by name and role, and the
directory's matches for a name, those already reading left out."""

from __future__ import annotations

from medchain.crypto import format_address
from medchain.web._vitals_sharing import vitals_sharing
from tests.web.conftest import DOCTOR_NAME, SECOND_DOCTOR_NAME, Ward


def test_readers_are_named_and_left_out_of_the_matches(ward: Ward) -> None:
    patient = ward.client(ward.patient)
    patient.share_vitals(ward.doctor.address)
    found = vitals_sharing(patient, ward.patient.address, "Dr.")
    (reader,) = found.readers
    assert (reader.name, reader.address) == (DOCTOR_NAME, format_address(ward.doctor.address))
    assert reader.what.startswith("doctor")
    assert [m.name for m in found.matches] == [SECOND_DOCTOR_NAME]


def test_no_query_no_matches(ward: Ward) -> None:
    found = vitals_sharing(ward.client(ward.patient), ward.patient.address, " ")
    assert found.readers == () and found.matches == ()
