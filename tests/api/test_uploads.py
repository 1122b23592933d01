"""POST /v1/records: a sealed record body and the transaction naming it, in one request."""

from __future__ import annotations

from medchain.app import CreateRecordArgs, RegisterArgs, Role, TransferArgs, new_record_id
from medchain.client import seal
from medchain.client._envelope import version_context
from medchain.crypto import AccountKeys
from medchain.offchain import cid_for
from tests.api.harness import FakeNode, api_client, make_chain, signed


def _setup() -> tuple[FakeNode, AccountKeys]:
    chain = make_chain()
    node = FakeNode(chain)
    patient = AccountKeys.generate()
    register = RegisterArgs(
        Role.PATIENT, "", patient.encryption_public_key, b"", patient.ring_public_key
    )
    chain.submit(signed(patient, 0, "registry.register", register, chain.chain_id))
    return node, patient


def _upload(patient: AccountKeys, chain_id: str, body: bytes) -> tuple[str, bytes]:
    record_id = new_record_id(patient.address, 1)
    sealed = seal(
        body, version_context(record_id, 1), {patient.address: patient.encryption_public_key}
    )
    args = CreateRecordArgs(
        patient.address,
        "Observation",
        cid_for(sealed.ciphertext),
        sealed.ciphertext_hash,
        sealed.wraps,
    )
    return signed(patient, 1, "records.create", args, chain_id).encoded.hex(), sealed.ciphertext


def test_a_record_is_stored_and_its_transaction_admitted_in_one_request() -> None:
    node, patient = _setup()
    api = api_client(node)
    tx, ciphertext = _upload(patient, node.genesis.chain_id, b'{"resourceType": "Observation"}')
    response = api.post("/v1/records", json={"tx": tx, "ciphertext": ciphertext.hex()})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["cid"] == cid_for(ciphertext)
    assert node.blobs.get(body["cid"]) == ciphertext
    assert node.chain.record(new_record_id(patient.address, 1)) is not None  # committed


def test_a_body_that_is_not_the_one_named_is_refused_and_not_stored() -> None:
    node, patient = _setup()
    api = api_client(node)
    tx, ciphertext = _upload(patient, node.genesis.chain_id, b"{}")
    other = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    response = api.post("/v1/records", json={"tx": tx, "ciphertext": other.hex()})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ciphertext_mismatch"
    assert not node.blobs.has(cid_for(other)) and not node.blobs.has(cid_for(ciphertext))


def test_other_transactions_and_bad_hex_are_refused() -> None:
    node, patient = _setup()
    api = api_client(node)
    transfer = signed(
        patient, 1, "accounts.transfer", TransferArgs(b"\x01" * 20, 1), node.genesis.chain_id
    )
    response = api.post("/v1/records", json={"tx": transfer.encoded.hex(), "ciphertext": "00"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_record_upload"
    tx, _ = _upload(patient, node.genesis.chain_id, b"{}")
    response = api.post("/v1/records", json={"tx": tx, "ciphertext": "zz"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_hex"
