"""Anonymous contributions through the SDK: decoys from the registry, a
de-identified copy only the institution can open, one contribution per member."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medchain.app import KeyImageReused, Role
from medchain.client import MedchainClient, NotAReader, UnknownParty
from medchain.client._anon import RingTooLarge, anon_submit, contributions, open_scope
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from tests.api.harness import admin, institution, make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


def _people(chain: LocalChain, role: Role, count: int) -> list[MedchainClient]:
    people = []
    for i in range(count):
        client = MedchainClient(AccountKeys.generate(), chain)
        client.register(role, f"{role.value} {i}")
        people.append(client)
    return people


def test_contribution_is_anonymous_sealed_and_single_use(chain: LocalChain) -> None:
    lab = institution(chain)
    patients = _people(chain, Role.PATIENT, 12)
    open_scope(lab, "cardio-study", Role.PATIENT, 11)
    resource = json.loads((EXAMPLES / "patient.json").read_text())
    anon_submit(patients[3], "cardio-study", resource, ring_size=11)

    (entry,) = chain.anon_entries("cardio-study")
    assert len(entry.ring) == 11 and patients[3].address in entry.ring
    (found,) = contributions(lab, "cardio-study")
    text = json.dumps(found.resource)
    assert resource["name"][0]["family"] not in text and resource["birthDate"] not in text
    with pytest.raises(NotAReader):
        contributions(patients[0], "cardio-study")
    with pytest.raises(KeyImageReused):
        anon_submit(patients[3], "cardio-study", resource, ring_size=11)
    anon_submit(patients[5], "cardio-study", resource, ring_size=11)
    assert len(chain.anon_entries("cardio-study")) == 2


def test_ring_needs_enough_registered_members(chain: LocalChain) -> None:
    lab = institution(chain)
    patients = _people(chain, Role.PATIENT, 3)
    open_scope(lab, "small", Role.PATIENT, 2)
    with pytest.raises(RingTooLarge, match="only 3"):
        anon_submit(patients[0], "small", json.loads((EXAMPLES / "condition.json").read_text()), 5)


def test_a_verified_only_scope_draws_its_ring_from_attested_patients(chain: LocalChain) -> None:
    lab = institution(chain)
    attested = _people(chain, Role.PATIENT, 4)
    strangers = _people(chain, Role.PATIENT, 8)
    hospital = admin(chain)
    for patient in attested:
        hospital.attest_patient(patient.address)
    open_scope(lab, "verified", Role.PATIENT, 3, verified_only=True)
    resource = json.loads((EXAMPLES / "condition.json").read_text())
    with pytest.raises(UnknownParty, match="attest yours"):
        anon_submit(strangers[0], "verified", resource, ring_size=3)
    anon_submit(attested[1], "verified", resource, ring_size=4)
    (entry,) = chain.anon_entries("verified")
    assert set(entry.ring) == {p.address for p in attested}
    with pytest.raises(RingTooLarge, match="only 4 verified"):
        anon_submit(attested[2], "verified", resource, ring_size=5)
