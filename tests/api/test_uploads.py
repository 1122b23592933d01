"""POST /v1/records: a sealed body and the signed transaction naming it, in one request.
The transaction is admitted before the body is stored (a refused one stores nothing),
every method naming one body is taken, the uploader's quota of bodies not yet named is
enforced and freed by the commit, and sending the same upload again completes it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from medchain.api import create_api
from medchain.app import CreateRecordArgs, RegisterArgs, Role, TransferArgs, new_record_id
from medchain.client import HttpChain, MedchainClient, NodeError, seal
from medchain.client._anon import anon_submit, contributions, open_scope
from medchain.client._envelope import version_context
from medchain.crypto import AccountKeys
from medchain.node import ANONYMOUS
from medchain.offchain import cid_for
from medchain.types import Tx, tx_id
from tests.api.harness import (
    FakeNode,
    SyncASGITransport,
    api_client,
    institution,
    make_chain,
    refused,
    signed,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _setup(**options: Any) -> tuple[FakeNode, AccountKeys]:
    chain = make_chain()
    node = FakeNode(chain, **options)
    patient = AccountKeys.generate()
    register = RegisterArgs(
        Role.PATIENT, "", patient.encryption_public_key, b"", patient.ring_public_key
    )
    chain.submit(signed(patient, 0, "registry.register", register, chain.chain_id))
    return node, patient


def _record(patient: AccountKeys, chain_id: str, body: bytes, nonce: int = 1) -> tuple[Tx, bytes]:
    """A records.create of `patient`'s own record, and its sealed body."""
    record_id = new_record_id(patient.address, nonce)
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
    return signed(patient, nonce, "records.create", args, chain_id), sealed.ciphertext


def _condition() -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / "condition.json").read_text()))


def _post(api: httpx.Client, tx: Tx, body: bytes, **params: str) -> httpx.Response:
    payload = {"tx": tx.encoded.hex(), "ciphertext": body.hex()}
    return api.post("/v1/records", json=payload, params=params)


def _refused(node: FakeNode, reason: str) -> float:
    value = node.registry.get_sample_value("medchain_uploads_refused_total", {"reason": reason})
    return value or 0.0


def test_a_record_is_admitted_then_stored_in_one_request() -> None:
    node, patient = _setup()
    api = api_client(node)
    tx, ciphertext = _record(patient, node.genesis.chain_id, b'{"resourceType": "Observation"}')
    response = _post(api, tx, ciphertext)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["cid"] == cid_for(ciphertext) and body["status"] == "pending"
    assert node.blobs.get(body["cid"]) == ciphertext
    assert node.chain.record(new_record_id(patient.address, 1)) is not None  # committed
    stored = node.registry.get_sample_value("medchain_uploads_stored_total")
    assert stored == 1
    assert node.registry.get_sample_value("medchain_upload_bytes_stored_total") == len(ciphertext)


def test_wait_answers_with_the_receipt() -> None:
    node, patient = _setup()
    tx, ciphertext = _record(patient, node.genesis.chain_id, b"{}")
    response = _post(api_client(node), tx, ciphertext, wait="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "committed" and body["receipt"]["ok"] is True
    assert body["height"] == node.chain.height


def test_a_body_that_is_not_the_one_named_is_refused_and_not_stored() -> None:
    node, patient = _setup()
    api = api_client(node)
    tx, ciphertext = _record(patient, node.genesis.chain_id, b"{}")
    other = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    assert "not one the records.create" in refused(
        _post(api, tx, other), 400, "ciphertext_mismatch"
    )
    assert not node.blobs.has(cid_for(other)) and not node.blobs.has(cid_for(ciphertext))
    assert node.chain.account(patient.address).nonce == 1  # the transaction was not admitted
    assert _refused(node, "body_mismatch") == 1


def test_a_transaction_with_a_bad_signature_stores_nothing() -> None:
    node, patient = _setup()
    api = api_client(node)
    tx, ciphertext = _record(patient, node.genesis.chain_id, b"{}")
    unsigned = dataclasses.replace(tx, signature=bytes(64))
    refused(_post(api, unsigned, ciphertext), 400, "invalid_signature")
    head = api.head(f"/v1/blobs/{cid_for(ciphertext)}")
    assert head.status_code == 404
    assert not node.blobs.has(cid_for(ciphertext))
    assert node.bodies.usage(patient.address_text) == 0  # the reservation was released
    assert _refused(node, "tx_refused") == 1


def test_a_refused_nonce_stores_nothing() -> None:
    node, patient = _setup()
    api = api_client(node)
    tx, ciphertext = _record(patient, node.genesis.chain_id, b"{}", nonce=0)  # used already
    refused(_post(api, tx, ciphertext), 409, "nonce_reused")
    assert api.head(f"/v1/blobs/{cid_for(ciphertext)}").status_code == 404


def test_other_transactions_and_bad_hex_are_refused() -> None:
    node, patient = _setup()
    api = api_client(node)
    transfer = signed(
        patient, 1, "accounts.transfer", TransferArgs(b"\x01" * 20, 1), node.genesis.chain_id
    )
    response = api.post("/v1/records", json={"tx": transfer.encoded.hex(), "ciphertext": "00"})
    message = refused(response, 400, "not_a_record_upload")
    assert "anon.submit" in message and "research.grant" in message
    tx, _ = _record(patient, node.genesis.chain_id, b"{}")
    refused(
        api.post("/v1/records", json={"tx": tx.encoded.hex(), "ciphertext": "zz"}),
        400,
        "invalid_hex",
    )
    assert _refused(node, "malformed") == 2


def test_the_quota_fills_then_frees_when_the_naming_transaction_commits() -> None:
    node, patient = _setup(auto_commit=False, quota_bytes=1_500)
    api = api_client(node)
    first, first_body = _record(patient, node.genesis.chain_id, b"x" * 1_000, nonce=1)
    second, second_body = _record(patient, node.genesis.chain_id, b"y" * 1_000, nonce=2)
    assert _post(api, first, first_body).status_code == 202
    held = node.bodies.usage(patient.address_text)
    assert held == len(first_body) > 1_000
    message = refused(_post(api, second, second_body), 429, "upload_quota_exceeded")
    assert patient.address_text in message and "to commit" in message
    assert not node.blobs.has(cid_for(second_body)) and not node.is_pending(tx_id(second))
    assert _refused(node, "over_quota") == 1
    node.commit()  # the first record commits: its body is named, the quota free again
    assert node.bodies.usage(patient.address_text) == 0
    assert node.bodies.is_named(cid_for(first_body))
    assert _post(api, second, second_body).status_code == 202
    assert node.blobs.has(cid_for(second_body))


def test_sending_the_same_upload_again_completes_it() -> None:
    node, patient = _setup(auto_commit=False)
    api = api_client(node)
    tx, ciphertext = _record(patient, node.genesis.chain_id, b"{}")
    # the transaction got in without its body (an answer lost after admission) ...
    assert api.post("/v1/txs", json={"tx": tx.encoded.hex()}).status_code == 202
    assert not node.blobs.has(cid_for(ciphertext))
    # ... sending transaction and body again stores the body, pending or committed
    assert _post(api, tx, ciphertext).status_code == 202
    assert node.blobs.get(cid_for(ciphertext)) == ciphertext
    node.commit()
    response = _post(api, tx, ciphertext)
    assert response.status_code == 200 and response.json()["status"] == "committed"
    assert node.bodies.usage(patient.address_text) == 0  # named: no quota


def test_every_method_naming_one_body_goes_through_the_sdk() -> None:
    """records.create, records.add_version, research.grant and anon.submit, by the SDK
    over HTTP: each body is stored and, once committed, named (no quota held)."""
    chain = make_chain()
    node = FakeNode(chain)
    with HttpChain("http://node", transport=SyncASGITransport(create_api(node))) as http:
        validator = MedchainClient(chain.validator, http)
        people = {"lab": institution(http)}
        for name in ("a", "b"):
            people[name] = MedchainClient(AccountKeys.generate(), http)
            validator.transfer(people[name].address, 10_000)
            people[name].register(Role.PATIENT, name)
        lab, patient, other = people["lab"], people["a"], people["b"]
        condition = _condition()
        record_id = patient.put_record(patient.address, condition)
        assert patient.add_version(record_id, condition) == 2
        patient.research_grant(record_id, lab.address)
        open_scope(lab, "study", Role.PATIENT, 2)
        anon_submit(other, "study", condition, ring_size=2)
        assert patient.read_record(record_id)["resourceType"] == "Condition"
        assert len(lab.research_data()) == 1 and len(contributions(lab, "study")) == 1
    versions = [chain.record_version(record_id, n) for n in (1, 2)]
    (entry,) = chain.anon_entries("study")
    cids = [v.cid for v in versions if v] + [chain.research_data(lab.address)[0].cid, entry.cid]
    assert len(cids) == 4 and all(node.bodies.is_named(cid) for cid in cids)
    for uploader in (patient.keys.address_text, ANONYMOUS):
        assert node.bodies.usage(uploader) == 0


def test_an_anonymous_upload_counts_against_the_shared_anonymous_bucket() -> None:
    chain = make_chain()
    members = [institution(chain)]
    for index in range(1, 3):
        member = MedchainClient(AccountKeys.generate(), chain)
        member.register(Role.PATIENT, f"m{index}")
        members.append(member)
    open_scope(members[0], "study", Role.PATIENT, 2)
    node = FakeNode(chain, auto_commit=False)
    captured: list[tuple[Tx, bytes]] = []

    def capture(tx: Tx, body: bytes) -> Any:
        captured.append((tx, body))
        raise RuntimeError("captured")

    chain.submit_with_body = capture  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        anon_submit(members[1], "study", _condition(), 2)
    ((tx, body),) = captured
    response = _post(api_client(node), tx, body)
    assert response.status_code == 202, response.text
    assert node.bodies.usage(ANONYMOUS) == len(body)
    assert node.bodies.usage(members[1].keys.address_text) == 0


def test_the_sdk_shows_the_nodes_refusal() -> None:
    node, patient = _setup(quota_bytes=10)
    with HttpChain("http://node", transport=SyncASGITransport(create_api(node))) as http:
        client = MedchainClient(patient, http)
        with pytest.raises(NodeError) as refused:
            client.put_record(patient.address, _condition())
    assert refused.value.code == "upload_quota_exceeded" and refused.value.status == 429
