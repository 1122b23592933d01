"""Chain records as FHIR resources and back: identities, meta, the patient reference."""

from __future__ import annotations

from typing import Any

from medchain.app import PurposeOfUse, StandingConsent
from medchain.client import validate_resource
from medchain.crypto import AccountKeys, format_address
from medchain.fhir._convert import (
    consent_resource,
    for_chain,
    instant_of,
    patient_of_reference,
    patient_resource,
    record_id_of,
    record_resource,
    subject_of,
)

PATIENT = AccountKeys.generate().address


def _observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "client-chosen",
        "meta": {"versionId": "9", "source": "https://ehr.example"},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/pat-0001"},
    }


def test_record_resource_carries_chain_identity_version_and_time() -> None:
    record_id = bytes(range(16))
    stored = for_chain(_observation(), PATIENT)
    served = record_resource(stored, record_id, 3, 1_700_000_000_123, PATIENT)
    assert served["id"] == record_id.hex()
    assert served["meta"] == {"versionId": "3", "lastUpdated": "2023-11-14T22:13:20.123Z"}
    assert served["subject"] == {"reference": f"Patient/{format_address(PATIENT)}"}
    assert validate_resource(served)["id"] == record_id.hex()


def test_for_chain_drops_client_id_and_meta_and_sets_the_subject() -> None:
    stored = for_chain(_observation(), PATIENT)
    assert "id" not in stored and "meta" not in stored
    assert subject_of(stored) == PATIENT


def test_allergy_names_its_patient_in_the_patient_element() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/x"}}
    assert for_chain(allergy, PATIENT)["patient"]["reference"].endswith(format_address(PATIENT))


def test_references_and_ids_parse_or_answer_none() -> None:
    text = format_address(PATIENT)
    assert patient_of_reference(f"Patient/{text}") == PATIENT
    assert patient_of_reference(text) == PATIENT
    assert patient_of_reference("Patient/pat-0001") is None
    assert record_id_of("00ff" * 8) == b"\x00\xff" * 8
    assert record_id_of("00FF" * 8) is None  # FHIR ids are case-sensitive: ours are lower
    assert record_id_of("00ff" * 16) is None  # not a record id's size
    assert record_id_of("not-hex") is None


def test_instant_is_utc_with_milliseconds() -> None:
    assert instant_of(0) == "1970-01-01T00:00:00.000Z"


def test_patient_resource_from_profile_validates() -> None:
    resource = patient_resource(PATIENT, {"name": "Jane Roe"})
    assert resource["id"] == format_address(PATIENT)
    assert resource["name"] == [{"text": "Jane Roe"}]


def test_consent_references_its_patient() -> None:
    consent = StandingConsent(
        consent_id=4,
        patient=PATIENT,
        reader=AccountKeys.generate().address,
        resource_types=(),
        codes=(),
        authors=(),
        organisations=(),
        purposes=(PurposeOfUse.TREATMENT,),
        expires_ms=0,
        granted_height=2,
        granted_by=PATIENT,
    )
    resource = consent_resource(consent)
    assert resource["id"] == "medchain-consent-4"
    assert resource["patient"]["reference"] == f"Patient/{format_address(PATIENT)}"
    validate_resource(resource)
