"""The consent endpoints: a patient's standing consents (all, or those covering a
record by an author of a type), one consent by id, and each reader's terms in a
record's metadata; items carry their canonical encoding; unknown is 404."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medchain.api import create_api
from medchain.app import PurposeOfUse, ReaderGrant, Role, StandingConsent
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, format_address
from medchain.types import decode
from tests.api.harness import (
    HOSPITAL,
    FakeNode,
    SyncASGITransport,
    api_client,
    credential,
    make_chain,
    ok,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONDITION = json.loads((EXAMPLES / "condition.json").read_text())
LOINC_HBA1C = "http://loinc.org|4548-4"


def _people() -> tuple[Any, MedchainClient, MedchainClient, MedchainClient]:
    """A chain, a patient, their GP and a credentialed nurse."""
    chain = make_chain()
    patient, gp, nurse = (MedchainClient(AccountKeys.generate(), chain) for _ in range(3))
    for person in (patient, gp, nurse):
        person.register(Role.PATIENT, "")
    assert credential(chain, HOSPITAL, nurse.address).ok
    return chain, patient, gp, nurse


def test_a_patients_consents_one_consent_and_the_covering_ones() -> None:
    chain, patient, gp, nurse = _people()
    observations = patient.grant_consent(gp.address, ["Observation"]).consent
    coded = patient.grant_consent(gp.address, codes=[LOINC_HBA1C]).consent
    patient.revoke_consent(observations.consent_id)
    api = api_client(FakeNode(chain))
    who = format_address(patient.address)

    listed = ok(api.get(f"/v1/patients/{who}/consents"))
    consents = [decode(StandingConsent, bytes.fromhex(c["encoded"])) for c in listed["consents"]]
    assert consents == chain.consents_of(patient.address) and len(consents) == 2
    first = listed["consents"][0]
    assert first["reader"] == format_address(gp.address) and first["purposes"] == ["TREAT"]
    assert first["resource_types"] == ["Observation"] and first["revoked_height"] > 0

    one = ok(api.get(f"/v1/consents/{coded.consent_id}"))
    assert one["codes"] == [LOINC_HBA1C] and one["granted_by"] == who
    query = {"author": format_address(nurse.address), "resource_type": "Condition"}
    covering = ok(api.get(f"/v1/patients/{who}/consents", params=query))
    assert [c["consent_id"] for c in covering["consents"]] == [coded.consent_id]

    half = api.get(f"/v1/patients/{who}/consents", params={"resource_type": "Condition"})
    assert half.status_code == 400 and half.json()["error"]["code"] == "invalid_argument"
    missing = api.get("/v1/consents/99")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_consent"
    stranger = format_address(AccountKeys.generate().address)
    assert api.get(f"/v1/patients/{stranger}/consents").status_code == 404


def test_a_records_metadata_shows_each_readers_terms() -> None:
    chain, patient, gp, nurse = _people()
    record_id = nurse.put_record(patient.address, CONDITION)
    patient.grant(record_id, gp.address, [PurposeOfUse.PAYMENT], expires_ms=2**50)
    api = api_client(FakeNode(chain))
    shown = ok(api.get(f"/v1/records/{record_id.hex()}"))
    grants = {g["reader"]: g for g in shown["grants"]}
    assert set(grants) == {format_address(gp.address), format_address(nurse.address)}
    gp_terms = grants[format_address(gp.address)]
    assert (gp_terms["purposes"], gp_terms["expires_ms"], gp_terms["consent_id"]) == (
        ["HPAYMT"],
        2**50,
        0,
    )
    decoded = [decode(ReaderGrant, bytes.fromhex(g["encoded"])) for g in shown["grants"]]
    assert decoded == chain.reader_grants(record_id)


def test_http_chain_reads_them_as_a_local_chain_does() -> None:
    chain, patient, gp, nurse = _people()
    consent = patient.grant_consent(gp.address, ["Condition"]).consent
    record_id = nurse.put_record(patient.address, CONDITION)
    remote = HttpChain("http://node", transport=SyncASGITransport(create_api(FakeNode(chain))))
    assert remote.consents_of(patient.address) == chain.consents_of(patient.address)
    assert remote.consent(consent.consent_id) == consent
    assert remote.consent(42) is None
    covering = remote.covering_consents(patient.address, nurse.address, "Condition")
    assert covering == [consent]
    assert remote.reader_grants(record_id) == chain.reader_grants(record_id)
    assert remote.reader_grants(b"\x01" * 16) == []
