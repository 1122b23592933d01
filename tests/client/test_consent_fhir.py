"""Standing consents as FHIR R4 Consent resources: a consent granted on chain exports
to a resource fhir.resources validates, which imports back to the same grant; what the
chain cannot express is refused, saying what."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent

from medchain.app import PurposeOfUse, Role
from medchain.client import (
    ACCOUNT_SYSTEM,
    InvalidConsent,
    InvalidFhirResource,
    MedchainClient,
    consent_from_fhir,
    consent_to_fhir,
    grant_args_of,
)
from medchain.crypto import AccountKeys, format_address
from tests.api.harness import HOSPITAL, credential, make_chain

LOINC_HBA1C = "http://loinc.org|4548-4"
EXPIRY_MS = 1_893_456_000_000
"""2030-01-01T00:00:00Z."""


@pytest.fixture
def exported() -> tuple[MedchainClient, dict[str, Any]]:
    """A patient's consent for their GP, limited by type, code, author and organisation,
    granted on chain and exported."""
    chain = make_chain()
    patient, gp, nurse = (MedchainClient(AccountKeys.generate(), chain) for _ in range(3))
    for person in (patient, gp, nurse):
        person.register(Role.PATIENT, "")
    assert credential(chain, HOSPITAL, nurse.address).ok
    granted = patient.grant_consent(
        gp.address,
        ["Observation", "Condition"],
        [LOINC_HBA1C],
        [nurse.address],
        [HOSPITAL.org_id],
        [PurposeOfUse.TREATMENT, PurposeOfUse.CARE_MANAGEMENT],
        EXPIRY_MS,
    )
    return patient, consent_to_fhir(granted.consent)


def test_a_consent_round_trips_through_a_fhir_consent(
    exported: tuple[MedchainClient, dict[str, Any]],
) -> None:
    patient, resource = exported
    (consent,) = patient.consents()
    validated = Consent.model_validate(json.loads(json.dumps(resource)))
    assert validated.status == "active"
    provision = resource["provision"]
    assert provision["type"] == "permit"
    assert provision["period"]["end"].startswith("2030-01-01T00:00:00")
    assert [c["code"] for c in provision["class"]] == ["Condition", "Observation"]
    assert [c["code"] for c in provision["purpose"]] == ["CAREMGT", "TREAT"]
    assert provision["code"] == [{"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}]
    roles = [a["role"]["coding"][0]["code"] for a in provision["actor"]]
    assert roles == ["IRCP", "AUT", "AUT"]
    assert resource["category"][0]["coding"][0]["code"] == "59284-0"
    assert resource["patient"]["identifier"] == {
        "system": ACCOUNT_SYSTEM,
        "value": format_address(patient.address),
    }
    assert consent_from_fhir(json.dumps(validated.model_dump(mode="json"))) == grant_args_of(
        consent
    )


def test_an_imported_consent_grants_the_same_consent_again(
    exported: tuple[MedchainClient, dict[str, Any]],
) -> None:
    patient, resource = exported
    args = consent_from_fhir(resource)
    patient.revoke_consent(1)
    again = patient.grant_consent_as(args)
    assert grant_args_of(again.consent) == args and again.consent.consent_id == 2


def _changed(resource: dict[str, Any], **provision: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resource)
    changed["provision"].update(provision)
    return changed


def test_what_the_chain_cannot_express_is_refused(
    exported: tuple[MedchainClient, dict[str, Any]],
) -> None:
    _, resource = exported
    reader, *authors = resource["provision"]["actor"]
    inactive = {**copy.deepcopy(resource), "status": "inactive"}
    cases = {
        "only an active one": inactive,
        "names 0 readers": _changed(resource, actor=authors),
        "a purpose must be one of": _changed(
            resource, purpose=[{"system": "http://example.org", "code": "TREAT"}]
        ),
        "cannot enforce provision.provision": _changed(resource, provision=[{"type": "deny"}]),
        "must be of type permit": _changed(resource, type="deny"),
        "not a medchain address": _changed(
            resource,
            actor=[
                {**reader, "reference": {"identifier": {"system": ACCOUNT_SYSTEM, "value": "x"}}}
            ],
        ),
    }
    for expected, bad in cases.items():
        with pytest.raises(InvalidConsent) as refused:
            consent_from_fhir(bad)
        assert expected in refused.value.message
    with pytest.raises(InvalidFhirResource):
        consent_from_fhir({"resourceType": "Consent", "status": "not-a-status"})


def test_a_date_only_expiry_lasts_through_that_day(
    exported: tuple[MedchainClient, dict[str, Any]],
) -> None:
    _, resource = exported
    dated = _changed(resource, period={"end": "2029-12-31"})
    assert consent_from_fhir(dated).expires_ms == EXPIRY_MS
