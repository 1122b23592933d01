"""The SDK end to end on a LocalChain: who can open what, and what research sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medchain.app import CredentialRole, Role, WrongRole
from medchain.client import (
    InvalidFhirResource,
    MedchainClient,
    NotAReader,
    open_sealed,
)
from medchain.client._envelope import version_context
from medchain.crypto import AccountKeys, DecryptionFailed
from medchain.node import LocalChain
from medchain.offchain import BlobCorrupted
from medchain.types import TxFailed
from tests.api.harness import HOSPITAL, credential, enlist, institution, make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / name).read_text()))


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


def _person(chain: LocalChain, role: Role, name: str) -> MedchainClient:
    return enlist(MedchainClient(AccountKeys.generate(), chain), role, name)


@pytest.fixture
def people(chain: LocalChain) -> dict[str, MedchainClient]:
    return {
        "patient": _person(chain, Role.PATIENT, "Jane Roe"),
        "doctor": _person(chain, Role.DOCTOR, "Dr. Who"),
        "doctor2": _person(chain, Role.DOCTOR, "Dr. Strange"),
        "lab": institution(chain),
        "stranger": _person(chain, Role.DOCTOR, "Dr. Nobody"),
    }


def test_author_owner_and_granted_reader_can_open(people: dict[str, MedchainClient]) -> None:
    patient, doctor, doctor2 = people["patient"], people["doctor"], people["doctor2"]
    resource = _example("observation-heart-rate.json")
    record_id = doctor.put_record(patient.address, resource, [doctor2.address])
    for reader in (patient, doctor, doctor2):
        opened = reader.read_record(record_id)
        assert opened["resourceType"] == "Observation"
        assert opened["valueQuantity"]["value"] == resource["valueQuantity"]["value"]


def test_stranger_cannot_decrypt_even_with_the_ciphertext_and_wraps(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, doctor, stranger = people["patient"], people["doctor"], people["stranger"]
    record_id = doctor.put_record(patient.address, _example("condition.json"))
    with pytest.raises(NotAReader, match="ask the patient"):
        stranger.read_record(record_id)
    version = chain.record_version(record_id, 1)
    assert version is not None
    blob = chain.blobs.get(version.cid)
    for wrap in version.wraps:  # every wrap on chain, tried with the stranger's key
        with pytest.raises(DecryptionFailed):
            open_sealed(stranger.keys, wrap.wrapped_key, blob, version_context(record_id, 1))


def test_revoked_reader_cannot_open_later_versions(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, doctor, doctor2 = people["patient"], people["doctor"], people["doctor2"]
    record_id = doctor.put_record(patient.address, _example("observation-heart-rate.json"))
    patient.grant(record_id, doctor2.address)
    assert doctor2.read_record(record_id)["status"]
    patient.revoke(record_id, doctor2.address)
    updated = _example("observation-heart-rate.json")
    updated["valueQuantity"]["value"] = 131
    assert doctor.add_version(record_id, updated) == 2
    with pytest.raises(NotAReader):
        doctor2.read_record(record_id)
    version = chain.record_version(record_id, 2)
    assert version is not None
    blob = chain.blobs.get(version.cid)
    for wrap in version.wraps:
        with pytest.raises(DecryptionFailed):
            open_sealed(doctor2.keys, wrap.wrapped_key, blob, version_context(record_id, 2))
    # the fresh key is really fresh: version 1's key does not open version 2
    old = chain.record_version(record_id, 1)
    assert old is not None
    mine = next(w for w in old.wraps if w.reader == doctor2.address)
    with pytest.raises(DecryptionFailed):
        open_sealed(doctor2.keys, mine.wrapped_key, blob, version_context(record_id, 1))
    assert patient.read_record(record_id)["valueQuantity"]["value"] == 131


def test_research_copy_carries_no_identifying_data(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, lab = people["patient"], people["lab"]
    source = _example("patient.json")
    record_id = patient.put_record(patient.address, source)
    patient.research_grant(record_id, lab.address)
    (item,) = lab.research_data()
    text = json.dumps(item.resource)
    secrets = [
        part
        for name in source["name"]
        for part in [*name.get("given", []), *([name["family"]] if "family" in name else [])]
    ]
    secrets += [ident["value"] for ident in source["identifier"]]
    secrets += [t["value"] for t in source["telecom"]]
    secrets += [line for a in source["address"] for line in a.get("line", [])]
    secrets += [a[k] for a in source["address"] for k in ("city", "postalCode") if k in a]
    secrets.append(source["birthDate"])
    assert secrets and all(secret not in text for secret in secrets), text
    assert item.resource["birthDate"] == source["birthDate"][:4]
    with pytest.raises(NotAReader):
        lab.read_record(record_id)


def test_unwarrant_takes_research_copy_away(people: dict[str, MedchainClient]) -> None:
    patient, lab = people["patient"], people["lab"]
    record_id = patient.put_record(patient.address, _example("condition.json"))
    patient.research_grant(record_id, lab.address)
    assert len(lab.research_data()) == 1
    patient.revoke(record_id, lab.address)
    assert lab.research_data() == []


def test_invalid_fhir_is_refused_before_anything_is_sent(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, doctor = people["patient"], people["doctor"]
    height = chain.height
    bad = _example("observation-heart-rate.json")
    bad["status"] = 42
    with pytest.raises(InvalidFhirResource, match="status"):
        doctor.put_record(patient.address, bad)
    assert chain.height == height


def test_altered_ciphertext_is_detected(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, doctor = people["patient"], people["doctor"]
    record_id = doctor.put_record(patient.address, _example("condition.json"))
    version = chain.record_version(record_id, 1)
    assert version is not None
    chain.blobs._blobs[version.cid] = b"tampered"  # type: ignore[attr-defined]
    with pytest.raises(BlobCorrupted, match="does not match"):
        patient.read_record(record_id)


def test_patient_profile_is_sealed(chain: LocalChain, people: dict[str, MedchainClient]) -> None:
    patient = people["patient"]
    identity = chain.identity(patient.address)
    assert identity is not None and b"Jane" not in identity.profile and identity.name == ""
    assert patient.my_profile() == {"name": "Jane Roe"}


def test_research_revoke_keeps_a_clinical_grant(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, lab = people["patient"], people["lab"]
    record_id = patient.put_record(patient.address, _example("condition.json"))
    patient.grant(record_id, lab.address)
    patient.research_grant(record_id, lab.address)
    patient.research_revoke(record_id, lab.address)
    assert lab.research_data() == []
    assert lab.read_record(record_id)["resourceType"] == "Condition"


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.INSTITUTION, Role.DEVICE])
def test_register_refuses_a_role_no_account_gives_itself(chain: LocalChain, role: Role) -> None:
    client = MedchainClient(AccountKeys.generate(), chain)
    with pytest.raises(WrongRole, match="a self-registered account is a patient"):
        client.register(role, "Dr. Self")
    assert chain.account(client.address).nonce == 0  # nothing was sent
    assert chain.identity(client.address) is None


def test_register_as_a_validator_once_credentialed(chain: LocalChain) -> None:
    client = MedchainClient(AccountKeys.generate(), chain)
    with pytest.raises(TxFailed) as refused:
        client.register(Role.VALIDATOR, "v9")
    assert refused.value.code == "not_credentialed"
    credential(chain, HOSPITAL, client.address, CredentialRole.VALIDATOR, "node 9")
    client.register(Role.VALIDATOR, "v9")
    identity = chain.identity(client.address)
    assert identity is not None and identity.role is Role.VALIDATOR and identity.name == "v9"
