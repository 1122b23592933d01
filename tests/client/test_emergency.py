"""Break-glass through the SDK on a LocalChain: the patient sets up a policy, the SDK
wraps the set's records, three of four organisations answer, the clinician reads the
set as it stood at the opening, and the patient sees it all in the notifications."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medchain.app import (
    DEFAULT_EMERGENCY_TYPES,
    CredentialRole,
    IssueArgs,
    ProxyRelation,
    ProxyScope,
    Role,
)
from medchain.client import (
    EmergencyNotOpen,
    MedchainClient,
    add_proxy,
    answer_pending,
    default_threshold,
    open_emergency,
    opt_out_of_emergency,
    read_emergency_set,
    set_up_emergency_policy,
)
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.types import (
    Allocation,
    ChainParams,
    Genesis,
    GenesisOrganisation,
    GenesisValidator,
    TxFailed,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORG_IDS = ("clinic-c", "hospital-a", "hospital-b", "lab-d")
HOUR_MS = 3_600_000

ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "patient": {"reference": "Patient/example"},
    "code": {"text": "penicillin"},
}
BLOOD_GROUP = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "882-1"}]},
    "subject": {"reference": "Patient/example"},
    "valueCodeableConcept": {"text": "O Rh(D) positive"},
}
MEDICATION = {
    "resourceType": "MedicationStatement",
    "status": "active",
    "medicationCodeableConcept": {"text": "warfarin 5 mg"},
    "subject": {"reference": "Patient/example"},
}


def _example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / name).read_text()))


class Clock:
    """The chain's block time, moved by the test."""

    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


class People:
    def __init__(
        self, chain: LocalChain, admins: dict[str, AccountKeys], accounts: dict[str, AccountKeys]
    ) -> None:
        self.chain = chain
        self.orgs = {org_id: MedchainClient(keys, chain) for org_id, keys in accounts.items()}
        self.patient = MedchainClient(AccountKeys.generate(), chain)
        self.patient.register(Role.PATIENT, "Jane Roe")
        self.clinician = MedchainClient(AccountKeys.generate(), chain)
        self.clinician.register(Role.PATIENT, "Ana Ruiz")
        issuer = MedchainClient(admins[ORG_IDS[1]], chain)
        args = IssueArgs(self.clinician.address, CredentialRole.DOCTOR, "Dr Ana Ruiz", 0)
        assert issuer.send("credentials.issue", args).ok


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def people(clock: Clock) -> People:
    validator = AccountKeys.generate()
    admins = {org_id: AccountKeys.generate() for org_id in ORG_IDS}
    accounts = {org_id: AccountKeys.generate() for org_id in ORG_IDS}
    organisations = tuple(
        GenesisOrganisation(
            org_id,
            org_id.replace("-", " ").title(),
            "hospital",
            (admins[org_id].public_key,),
            accounts[org_id].public_key,
            accounts[org_id].encryption_public_key,
        )
        for org_id in ORG_IDS
    )
    genesis = Genesis(
        "medchain-test",
        0,
        ChainParams(),
        (Allocation(validator.address, 10**9),),
        (GenesisValidator(validator.public_key, "v0", 1, ORG_IDS[0]),),
        organisations=organisations,
    )
    chain = LocalChain.in_memory(genesis, validator, clock)
    return People(chain, admins, accounts)


def _resources(found: list[Any]) -> list[dict[str, Any]]:
    return [r.resource for r in found]


def test_the_clinician_reads_the_set_after_three_of_four_answers(people: People) -> None:
    patient, clinician = people.patient, people.clinician
    before_policy = patient.put_record(patient.address, ALLERGY)
    assert set_up_emergency_policy(patient).ok
    policy = people.chain.emergency_policy(patient.address)
    assert policy is not None and policy.threshold == default_threshold(4) == 3
    assert policy.resource_types == DEFAULT_EMERGENCY_TYPES
    blood = patient.put_record(patient.address, BLOOD_GROUP)
    patient.put_record(patient.address, _example("observation-heart-rate.json"))
    patient.put_record(patient.address, _example("patient.json"))

    request_id = open_emergency(clinician, patient.address, "unconscious, no ID card")
    later = patient.put_record(patient.address, MEDICATION)
    with pytest.raises(EmergencyNotOpen, match="0 of the 3"):
        read_emergency_set(clinician, request_id)
    for org_id in ORG_IDS[:2]:
        assert answer_pending(people.orgs[org_id]) == [request_id]
    assert answer_pending(people.orgs[ORG_IDS[0]]) == []  # once per organisation
    with pytest.raises(EmergencyNotOpen, match="2 of the 3"):
        read_emergency_set(clinician, request_id)
    assert answer_pending(people.orgs[ORG_IDS[2]]) == [request_id]

    found = read_emergency_set(clinician, request_id)
    assert [r.record_id for r in found] == [before_policy, blood]
    assert _resources(found) == [patient.read_record(before_policy), patient.read_record(blood)]
    assert later not in [r.record_id for r in found]
    notes = people.chain.notifications_of(patient.address)
    assert [n.kind for n in notes] == ["emergency.opened"] + ["emergency.answered"] * 3
    assert notes[0].detail == "unconscious, no ID card"
    assert [r.request_id for r in people.chain.emergency_requests_by_org(ORG_IDS[1])] == [
        request_id
    ]


def test_a_record_written_for_the_patient_by_the_clinician_joins_the_set(people: People) -> None:
    patient, clinician = people.patient, people.clinician
    assert set_up_emergency_policy(patient, threshold=2).ok
    written = clinician.put_record(patient.address, _example("condition.json"))
    request_id = open_emergency(clinician, patient.address, "collapsed in the street")
    for org_id in ORG_IDS[2:]:
        assert answer_pending(people.orgs[org_id]) == [request_id]
    (found,) = read_emergency_set(clinician, request_id)
    assert found.record_id == written and found.resource == patient.read_record(written)


def test_no_answer_is_accepted_after_the_window(people: People, clock: Clock) -> None:
    patient, clinician = people.patient, people.clinician
    assert set_up_emergency_policy(patient).ok
    patient.put_record(patient.address, ALLERGY)
    request_id = open_emergency(clinician, patient.address, "cardiac arrest")
    assert answer_pending(people.orgs[ORG_IDS[0]]) == [request_id]
    clock.now_ms += 5 * HOUR_MS  # past the 4-hour window (block times step 1 ms)
    for org_id in ORG_IDS[1:]:
        assert answer_pending(people.orgs[org_id]) == []
    with pytest.raises(EmergencyNotOpen, match="1 of the 3"):
        read_emergency_set(clinician, request_id)


def test_after_opting_out_nothing_is_wrapped_and_nothing_opens(people: People) -> None:
    patient, clinician = people.patient, people.clinician
    assert set_up_emergency_policy(patient).ok
    assert opt_out_of_emergency(patient).ok
    record_id = patient.put_record(patient.address, ALLERGY)
    assert patient.chain.record(record_id) is not None
    with pytest.raises(TxFailed, match="no emergency policy on"):
        open_emergency(clinician, patient.address, "unconscious")


def test_a_new_version_is_what_the_set_holds(people: People) -> None:
    patient, clinician = people.patient, people.clinician
    assert set_up_emergency_policy(patient).ok
    record_id = patient.put_record(patient.address, ALLERGY)
    severe = {**ALLERGY, "criticality": "high"}
    assert patient.add_version(record_id, severe) == 2
    request_id = open_emergency(clinician, patient.address, "anaphylaxis")
    for org_id in ORG_IDS[1:]:
        assert answer_pending(people.orgs[org_id]) == [request_id]
    (found,) = read_emergency_set(clinician, request_id)
    assert (found.record_id, found.version) == (record_id, 2)
    assert found.resource == patient.read_record(record_id) != patient.read_record(record_id, 1)


def test_a_mother_sets_up_her_childs_policy_as_proxy(people: People) -> None:
    child, clinician = people.patient, people.clinician
    mother = MedchainClient(AccountKeys.generate(), people.chain)
    mother.register(Role.PATIENT, "Mary Roe")
    allergy = child.put_record(child.address, ALLERGY)
    scopes = (ProxyScope.READ, ProxyScope.GRANT)
    add_proxy(child, mother.address, ProxyRelation.PARENT, scopes)
    assert set_up_emergency_policy(mother, patient=child.address).ok
    policy = people.chain.emergency_policy(child.address)
    assert policy is not None and policy.set_by == mother.address
    assert people.chain.emergency_policy(mother.address) is None
    request_id = open_emergency(clinician, child.address, "fell from a tree, unconscious")
    for org_id in ORG_IDS[:3]:
        answer_pending(people.orgs[org_id])
    (found,) = read_emergency_set(clinician, request_id)
    assert found.record_id == allergy and found.resource == child.read_record(allergy)
    assert opt_out_of_emergency(mother, patient=child.address).ok
    policy = people.chain.emergency_policy(child.address)
    assert policy is not None and not policy.enabled
