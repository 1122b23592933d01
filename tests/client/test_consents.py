"""Consent from the SDK on a LocalChain whose block time the test moves: grant terms
and their expiry, standing consents, past records re-wrapped, and code filters
applied by the writer's client."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from medchain.app import AddVersionArgs, AuditAction, CreateRecordArgs, PurposeOfUse, Role
from medchain.client import (
    MedchainClient,
    NotAReader,
    canonical_json,
    resource_codes,
    seal,
    version_context,
)
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.offchain import cid_for
from medchain.types import TxFailed
from tests.api.harness import HOSPITAL, credential, make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONDITION = json.loads((EXAMPLES / "condition.json").read_text())
HEART_RATE = json.loads((EXAMPLES / "observation-heart-rate.json").read_text())
LOINC_HEART_RATE = "http://loinc.org|8867-4"
HOUR_MS = 3_600_000


class Clock:
    """The chain's block time, moved by the test."""

    def __init__(self) -> None:
        self.now_ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now_ms


class People:
    def __init__(self, chain: LocalChain, clock: Clock) -> None:
        self.chain = chain
        self.patient, self.gp, self.nurse = (
            MedchainClient(AccountKeys.generate(), chain) for _ in range(3)
        )
        for name, client in (("Jane Roe", self.patient), ("GP", self.gp), ("N", self.nurse)):
            client.register(Role.PATIENT, name)
            client.clock = clock
        assert credential(chain, HOSPITAL, self.nurse.address).ok


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def people(clock: Clock) -> People:
    return People(make_chain(clock=clock), clock)


def _other_observation() -> dict[str, Any]:
    """A body-weight observation: an Observation without the heart-rate code."""
    resource: dict[str, Any] = copy.deepcopy(HEART_RATE)
    resource["code"]["coding"] = [{"system": "http://loinc.org", "code": "29463-7"}]
    return resource


def _keys_of(*clients: MedchainClient) -> dict[bytes, bytes]:
    """Whom a hand-built version is sealed for: these accounts' encryption keys."""
    return {c.address: c.keys.encryption_public_key for c in clients}


def _readers_of_latest(client: MedchainClient, record_id: bytes) -> set[bytes]:
    record = client.record(record_id)
    version = client.chain.record_version(record_id, record.version_count)
    assert version is not None
    return {w.reader for w in version.wraps}


# -- grant terms ------------------------------------------------------------------------


def test_an_expired_grant_is_left_out_of_the_next_version(people: People, clock: Clock) -> None:
    patient, gp = people.patient, people.gp
    record_id = patient.put_record(patient.address, CONDITION)
    expiry = clock.now_ms + HOUR_MS
    assert patient.grant(record_id, gp.address, [PurposeOfUse.CARE_MANAGEMENT], expiry).ok
    (grant,) = patient.reader_grants(record_id)
    assert (grant.reader, grant.purposes, grant.expires_ms) == (
        gp.address,
        (PurposeOfUse.CARE_MANAGEMENT,),
        expiry,
    )
    assert gp.read_record(record_id)["resourceType"] == "Condition"

    clock.now_ms = expiry + 1
    assert patient.expired_readers(patient.record(record_id)) == {gp.address}
    patient.add_version(record_id, CONDITION)
    assert gp.address not in _readers_of_latest(patient, record_id)
    assert gp.read_record(record_id, version=1)["resourceType"] == "Condition"
    with pytest.raises(NotAReader):
        gp.read_record(record_id)
    assert patient.audit(record_id)[-1].action is AuditAction.EXPIRED
    assert patient.reader_grants(record_id) == []


def test_the_chain_refuses_a_version_wrapped_for_an_expired_reader(
    people: People, clock: Clock
) -> None:
    patient, gp = people.patient, people.gp
    record_id = patient.put_record(patient.address, CONDITION)
    assert patient.grant(record_id, gp.address, expires_ms=clock.now_ms + HOUR_MS).ok
    clock.now_ms += 2 * HOUR_MS
    keys = _keys_of(patient, gp)
    sealed = seal(canonical_json(CONDITION), version_context(record_id, 2), keys)
    args = AddVersionArgs(
        record_id, cid_for(sealed.ciphertext), sealed.ciphertext_hash, sealed.wraps
    )
    with pytest.raises(TxFailed) as refused:
        patient.send_with_body("records.add_version", args, sealed.ciphertext)
    assert refused.value.code == "key_wrap_mismatch" and "expired" in refused.value.message


def test_set_terms_renews_a_grant_before_it_expires(people: People, clock: Clock) -> None:
    patient, gp = people.patient, people.gp
    record_id = patient.put_record(patient.address, CONDITION)
    assert patient.grant(record_id, gp.address, expires_ms=clock.now_ms + HOUR_MS).ok
    assert patient.set_terms(record_id, gp.address, [PurposeOfUse.TREATMENT], 0).ok
    clock.now_ms += 2 * HOUR_MS
    patient.add_version(record_id, CONDITION)
    assert gp.read_record(record_id, version=2)["resourceType"] == "Condition"


# -- standing consents ------------------------------------------------------------------


def test_a_standing_consent_opens_a_clinicians_new_record_to_the_gp(people: People) -> None:
    patient, gp, nurse = people.patient, people.gp, people.nurse
    granted = patient.grant_consent(gp.address, ["Observation"], purposes=[PurposeOfUse.TREATMENT])
    assert granted.receipt.ok and granted.rewrapped == ()
    record_id = nurse.put_record(patient.address, HEART_RATE)
    assert gp.read_record(record_id)["resourceType"] == "Observation"
    (gp_grant,) = [g for g in nurse.reader_grants(record_id) if g.reader == gp.address]
    assert gp_grant.consent_id == granted.consent.consent_id

    # a writer that leaves the GP out is refused by the chain
    keys = _keys_of(patient, nurse)
    sealed = seal(canonical_json(HEART_RATE), version_context(b"\x00" * 16, 1), keys)
    args = CreateRecordArgs(
        patient.address,
        "Observation",
        cid_for(sealed.ciphertext),
        sealed.ciphertext_hash,
        sealed.wraps,
    )
    with pytest.raises(TxFailed) as refused:
        nurse.send_with_body("records.create", args, sealed.ciphertext)
    assert refused.value.code == "reader_required"


def test_grant_consent_rewraps_the_past_records_it_covers(people: People) -> None:
    patient, gp, nurse = people.patient, people.gp, people.nurse
    condition = nurse.put_record(patient.address, CONDITION)
    observation = patient.put_record(patient.address, HEART_RATE)
    granted = patient.grant_consent(gp.address, ["Condition"])
    assert granted.rewrapped == (condition,) and granted.skipped == ()
    assert gp.read_record(condition)["resourceType"] == "Condition"
    with pytest.raises(NotAReader):
        gp.read_record(observation)
    (grant,) = [g for g in patient.reader_grants(condition) if g.reader == gp.address]
    assert grant.consent_id == granted.consent.consent_id
    assert patient.revoke_consent(granted.consent.consent_id).ok
    later = nurse.put_record(patient.address, CONDITION)
    assert gp.address not in patient.record(later).readers


def test_grant_consent_passes_over_an_erased_record(people: People) -> None:
    patient, gp, nurse = people.patient, people.gp, people.nurse
    erased = nurse.put_record(patient.address, CONDITION)
    kept = nurse.put_record(patient.address, CONDITION)
    assert patient.erase(erased).ok
    granted = patient.grant_consent(gp.address, ["Condition"])
    assert granted.rewrapped == (kept,) and granted.skipped == ()
    assert patient.record(erased).readers == ()


def test_code_filtered_consents_are_applied_by_the_writers_client(people: People) -> None:
    patient, gp, nurse = people.patient, people.gp, people.nurse
    assert LOINC_HEART_RATE in resource_codes(HEART_RATE)
    past_heart_rate = patient.put_record(patient.address, HEART_RATE)
    past_weight = patient.put_record(patient.address, _other_observation())
    granted = patient.grant_consent(gp.address, codes=[LOINC_HEART_RATE])
    assert granted.rewrapped == (past_heart_rate,)

    heart_rate = nurse.put_record(patient.address, HEART_RATE)
    weight = nurse.put_record(patient.address, _other_observation())
    assert gp.read_record(heart_rate)["code"]["coding"][0]["code"] == "8867-4"
    assert gp.address not in patient.record(weight).readers
    assert gp.address not in patient.record(past_weight).readers

    # a later version carrying the code opens to the GP from that version on
    nurse.add_version(weight, HEART_RATE)
    assert gp.read_record(weight, version=2)["resourceType"] == "Observation"
    with pytest.raises(NotAReader):
        gp.read_record(weight, version=1)
