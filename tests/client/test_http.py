"""HttpChain end to end: the SDK against the API served by uvicorn on a socket, the
node's refusals as errors with its codes, and what happens when there is no node."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from medchain.api import MAX_BLOB_BATCH_BLOBS, MAX_DEVICE_LOOKUP
from medchain.app import (
    Device,
    DeviceKind,
    RegisterArgs,
    RegisterDeviceArgs,
    Role,
    TransferArgs,
    UnwarrantArgs,
    registration_message,
)
from medchain.client import (
    HttpChain,
    MedchainClient,
    NodeError,
    NodeUnreachable,
    NotAReader,
    NotCommitted,
    UploadNotSigned,
)
from medchain.client._anon import anon_submit, contributions, open_scope
from medchain.crypto import AccountKeys, verify_signature
from medchain.node import TxFailed
from medchain.offchain import BlobCorrupted, BlobStore, InvalidCid, cid_for
from medchain.types import (
    UPLOAD_EXPIRES_HEADER,
    UPLOAD_SIGNATURE_HEADER,
    UPLOADER_HEADER,
    Receipt,
    Tx,
    block_hash,
    bulk_upload_signing_bytes,
    decode,
    encode,
    tx_id,
)
from tests.api.harness import (
    FakeNode,
    Served,
    admin,
    enlist,
    institution,
    make_chain,
    served,
    signed,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALIDATOR = AccountKeys.generate()


@pytest.fixture(scope="module")
def node() -> Iterator[Served]:
    with served(lambda: FakeNode(make_chain(VALIDATOR))) as running:
        yield running


@pytest.fixture
def chain(node: Served) -> Iterator[HttpChain]:
    with HttpChain(node.url, timeout_s=10) as http:
        yield http


def _register(keys: AccountKeys) -> Tx:
    args = RegisterArgs(Role.PATIENT, "", keys.encryption_public_key)
    return signed(keys, 0, "registry.register", args)


def _person(chain: HttpChain, role: Role, name: str) -> MedchainClient:
    return enlist(MedchainClient(AccountKeys.generate(), chain), role, name)


def _example(name: str) -> dict[str, object]:
    return dict(json.loads((EXAMPLES / name).read_text()))


def test_records_through_the_node(chain: HttpChain) -> None:
    patient = _person(chain, Role.PATIENT, "Jane Roe")
    doctor = _person(chain, Role.DOCTOR, "Dr. Who")
    carol = _person(chain, Role.DOCTOR, "Dr. Carol")
    lab = institution(chain)
    assert chain.chain_id == "medchain-test" and chain.params.consensus == "pbft"

    record_id = doctor.put_record(patient.address, _example("condition.json"), keywords=["asthma"])
    assert patient.read_record(record_id)["resourceType"] == "Condition"
    assert doctor.read_record(record_id)["resourceType"] == "Condition"
    with pytest.raises(NotAReader):
        carol.read_record(record_id)
    patient.grant(record_id, carol.address)
    assert carol.read_record(record_id)["resourceType"] == "Condition"
    patient.revoke(record_id, carol.address)
    doctor.add_version(record_id, _example("condition.json"))
    with pytest.raises(NotAReader):
        carol.read_record(record_id)

    assert doctor.search("ASTHMA").record_ids == (record_id,)
    patient.research_grant(record_id, lab.address)
    (item,) = lab.research_data()
    assert item.entry.record_id == record_id
    actions = [e.action.value for e in patient.audit(record_id)]
    assert actions[0] == "created" and actions[-1] == "research_granted"
    assert chain.patient_records(patient.address) == [record_id]
    assert patient.my_profile()["name"] == "Jane Roe"

    record = chain.record(record_id)
    assert record is not None and record.version_count == 2
    as_patient = patient.chain
    assert as_patient.record_version(record_id, 3) is None
    assert as_patient.record_version(record_id, 0) is None
    with pytest.raises(NodeError) as unsigned:  # a chain without keys reads no wraps
        chain.record_version(record_id, 1)
    assert (unsigned.value.status, unsigned.value.code) == (401, "read_unsigned")
    assert chain.record(b"\x00" * 16) is None and chain.audit(b"\x00" * 16) == []
    assert chain.identity(AccountKeys.generate().address) is None


def test_refused_call_raises_tx_failed_with_the_receipt(chain: HttpChain) -> None:
    patient = _person(chain, Role.PATIENT, "P")
    doctor = _person(chain, Role.DOCTOR, "D")
    record_id = doctor.put_record(patient.address, _example("condition.json"))
    with pytest.raises(TxFailed) as failed:
        doctor.send("records.unwarrant", UnwarrantArgs(record_id, patient.address))
    assert failed.value.code == "not_owner" and not failed.value.receipt.ok
    # an access-controlled call is dry-run at admission: refused there, nothing spent
    assert chain.account(doctor.address).nonce == 2
    with pytest.raises(TxFailed) as failed:
        doctor.transfer(patient.address, 10**15)  # more than it holds
    assert failed.value.code == "balance_too_low" and not failed.value.receipt.ok
    # another call is included refused, as on a network: its nonce is spent
    assert chain.account(doctor.address).nonce == 3


def test_rejected_transaction_raises_the_nodes_error(chain: HttpChain) -> None:
    keys = AccountKeys.generate()
    first = _register(keys)
    chain.submit(first)
    replay = signed(keys, 0, "accounts.transfer", TransferArgs(keys.address, 1))
    with pytest.raises(NodeError) as refused:
        chain.submit(replay)
    assert refused.value.code == "nonce_reused" and refused.value.status == 409
    assert chain.submit(first).ok  # the same transaction again: its receipt


def test_submit_raw_answers_without_waiting(chain: HttpChain) -> None:
    keys = AccountKeys.generate()
    committed = chain.submit(_register(keys))
    assert chain.submit_raw(_register(keys).encoded) == committed  # a replay: its receipt
    for raw, code, status in (
        (b"\xf8\xff garbage", "malformed_tx", 400),
        (b"\x00" * (chain.params.max_tx_bytes + 1), "tx_too_large", 413),
    ):
        with pytest.raises(NodeError) as refused:
            chain.submit_raw(raw)
        assert (refused.value.code, refused.value.status) == (code, status)
    with (
        served(lambda: FakeNode(make_chain(VALIDATOR), auto_commit=False)) as pending,
        HttpChain(pending.url, timeout_s=10) as held,
    ):
        tx = _register(AccountKeys.generate())
        assert held.submit_raw(tx.encoded) is None
        assert held.tx_status(tx_id(tx)).status == "pending"


def test_submit_many_answers_each_transaction_in_order(chain: HttpChain) -> None:
    payer = MedchainClient(VALIDATOR, chain)
    payee = AccountKeys.generate()
    nonce = chain.account(VALIDATOR.address).nonce
    good = [
        signed(VALIDATOR, nonce + i, "accounts.transfer", TransferArgs(payee.address, 1))
        for i in range(3)
    ]
    reused = signed(VALIDATOR, nonce, "accounts.transfer", TransferArgs(payee.address, 2))
    refused_on_chain = payer.build(
        "accounts.transfer", TransferArgs(VALIDATOR.address, 1), nonce=nonce + 3
    )
    results = chain.submit_many([*good, reused, refused_on_chain, good[1]])
    assert len(results) == 6
    assert [isinstance(r, Receipt) and r.ok for r in results[:3]] == [True] * 3
    assert isinstance(results[3], NodeError) and results[3].code == "nonce_reused"
    assert isinstance(results[4], TxFailed) and "yourself" in results[4].message
    assert results[5] == results[1]  # the same transaction twice: its receipt twice
    assert chain.account(VALIDATOR.address).nonce == nonce + 4
    assert chain.account(payee.address).balance == 3
    again = chain.submit_many(good[:1])  # already committed: its receipt, not an error
    assert isinstance(again[0], Receipt) and again[0].ok
    stranger = AccountKeys.generate()  # a call the node's dry run refuses: as TxFailed
    doctor = RegisterArgs(Role.DOCTOR, "Dr. Self", stranger.encryption_public_key)
    (refused,) = chain.submit_many([signed(stranger, 0, "registry.register", doctor)])
    assert isinstance(refused, TxFailed) and refused.code == "wrong_role"
    assert not refused.receipt.ok and chain.account(stranger.address).nonce == 0


def test_staking_and_anonymous_scopes(chain: HttpChain) -> None:
    validator = MedchainClient(VALIDATOR, chain)
    validator.stake(1_000)
    validator.vote(VALIDATOR.address, 600)
    assert chain.stake(VALIDATOR.address).bonded == 1_000
    assert [c.address for c in chain.candidates()] == [VALIDATOR.address]

    lab = institution(chain)
    patients = [_person(chain, Role.PATIENT, f"P{i}") for i in range(3)]
    scope = "study/one two"
    open_scope(lab, scope, Role.PATIENT, 3)
    assert chain.role_count(Role.PATIENT) >= 3
    assert chain.role_member(Role.PATIENT, 0) is not None
    assert chain.role_member(Role.PATIENT, 10**6) is None
    anon_submit(patients[1], scope, _example("condition.json"), ring_size=3)
    (found,) = contributions(lab, scope)
    assert found.resource["resourceType"] == "Condition"
    opened = chain.anon_scope(scope)
    assert opened is not None and opened.count == 1
    assert chain.anon_scope("no such scope") is None and chain.anon_entries("nope") == []


def _auto_commit_again(node: FakeNode) -> None:
    """Back to sealing each call at once, after sealing what waited meanwhile."""
    node.auto_commit = True
    node.commit()


def test_blocks_status_and_tx_status(node: Served, chain: HttpChain) -> None:
    keys = AccountKeys.generate()
    tx = _register(keys)
    receipt = chain.submit(tx)
    found = chain.tx_status(receipt.tx_id)
    assert found.status == "committed" and found.receipt == receipt and found.height
    block = chain.block_at(found.height)
    assert block is not None and block.txs == (tx,)
    latest = chain.latest_block()
    assert latest.height >= found.height and chain.block_at(latest.height + 1) is None
    assert chain.block_at(-1) is None
    status = chain.status()
    assert status.chain_id == "medchain-test" and status.height >= found.height
    assert chain.tx_status(b"\x01" * 32).status == "unknown"

    node.call(lambda n: setattr(n, "auto_commit", False))
    try:
        pending = signed(keys, 1, "accounts.transfer", TransferArgs(keys.address, 1))
        with HttpChain(node.url, timeout_s=0.2) as impatient, pytest.raises(NotCommitted):
            impatient.submit(pending)
        assert chain.tx_status(bytes.fromhex(_hash(pending))).status == "pending"
        assert chain.status().mempool_txs == 1
    finally:
        node.call(_auto_commit_again)
    assert chain.tx_status(bytes.fromhex(_hash(pending))).status == "committed"


def test_anchoring_and_block_ids(chain: HttpChain) -> None:
    assert chain.anchoring()["configured"] is False  # the test node anchors nowhere
    top = chain.height
    found = chain.block_ids([0, top, top + 1_000])
    assert sorted(found) == [0, top]  # heights the node does not hold are left out
    for height, (block_id, state_root) in found.items():
        block = chain.block_at(height)
        assert block is not None
        assert (block_id, state_root) == (block_hash(block.header), block.header.state_root)
    assert chain.genesis.chain_id == "medchain-test"


def test_block_ids_in_requests_of_ten_thousand_and_the_older_answer() -> None:
    asked: list[list[int]] = []

    def older(request: httpx.Request) -> httpx.Response:
        heights = json.loads(request.content)["heights"]
        asked.append(heights)
        return httpx.Response(
            200, json={"hashes": {str(h): f"{h % 256:02x}" * 32 for h in heights}}
        )

    found = _mock(older).block_ids(range(25_000))
    assert [len(a) for a in asked] == [10_000, 10_000, 5_000]
    assert len(found) == 25_000 and found[300] == (bytes([300 % 256]) * 32, None)
    garbled = _mock(lambda request: httpx.Response(200, json={"blocks": {"1": {"hash": "zz"}}}))
    with pytest.raises(NodeError, match="not hex by height") as bad:
        garbled.block_ids([1])
    assert bad.value.code == "bad_response"


def test_an_endpoint_the_node_does_not_serve_is_named() -> None:
    old = _mock(
        lambda request: httpx.Response(404, json={"error": {"code": "not_found", "message": "?"}})
    )
    with pytest.raises(NodeError, match="does not serve /v1/anchoring") as missing:
        old.anchoring()
    assert (missing.value.code, missing.value.status) == ("endpoint_missing", 404)


def _hash(tx: Tx) -> str:
    return tx_id(tx).hex()


@pytest.fixture(scope="module")
def gateway(node: Served) -> AccountKeys:
    """An edge gateway a hospital registered on the node's chain."""
    keys = AccountKeys.generate()
    with HttpChain(node.url, timeout_s=10) as http:
        hospital = admin(http)
        hospital.register_gateway(keys.address, "ward 3")
    return keys


def test_blobs(chain: HttpChain, gateway: AccountKeys) -> None:
    with pytest.raises(UploadNotSigned, match="with the transaction that names it"):
        chain.blobs.put(b"ciphertext")
    assert not chain.blobs.has(cid_for(b"ciphertext"))
    cid = chain.bulk_blobs(gateway).put(b"ciphertext")
    assert cid == cid_for(b"ciphertext")
    assert chain.blobs.has(cid)
    with pytest.raises(NodeError) as unsigned:  # served only to a signed, authorised read
        chain.blobs.get(cid)
    assert (unsigned.value.status, unsigned.value.code) == (401, "read_unsigned")
    missing = cid_for(b"missing")
    assert not chain.blobs.has(missing)
    with pytest.raises(InvalidCid):
        chain.blobs.get("QmNotOurs")


class Counting(httpx.BaseTransport):
    """The network, with every request kept."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._http = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._http.handle_request(request)

    def paths(self, method: str) -> list[str]:
        return [r.url.path for r in self.requests if r.method == method]


def _device(chain: HttpChain, patient: MedchainClient, label: str) -> bytes:
    keys = AccountKeys.generate()
    patient.register_device(keys, patient.address, DeviceKind.PULSE_OXIMETER, label)
    return keys.address


def test_devices_in_one_request_with_the_height_they_are_read_at(node: Served) -> None:
    counting = Counting()
    with HttpChain(node.url, timeout_s=10, transport=counting) as chain:
        patient = _person(chain, Role.PATIENT, "Jane Roe")
        first, second = _device(chain, patient, "finger"), _device(chain, patient, "ear")
        unknown = AccountKeys.generate().address
        counting.requests.clear()
        height, devices = chain.devices([second, unknown, first])
        assert counting.paths("POST") == ["/v1/devices/lookup"] and len(counting.requests) == 1
        assert height == chain.height
        assert devices == [chain.device(second), None, chain.device(first)]
        assert isinstance(devices[0], Device) and patient.device_label(devices[0]).text == "ear"
        counting.requests.clear()
        assert chain.devices([]) == (height, [])  # still one request: the height
        assert counting.paths("POST") == ["/v1/devices/lookup"]


def test_a_long_device_list_is_split_under_the_apis_limit(node: Served) -> None:
    counting = Counting()
    with HttpChain(node.url, timeout_s=10, transport=counting) as chain:
        patient = _person(chain, Role.PATIENT, "Jane Roe")
        known = _device(chain, patient, "wrist")
        addresses = [AccountKeys.generate().address for _ in range(2 * MAX_DEVICE_LOOKUP + 345)]
        for index in (0, MAX_DEVICE_LOOKUP - 1, MAX_DEVICE_LOOKUP, len(addresses) - 1):
            addresses[index] = known
        counting.requests.clear()
        height, devices = chain.devices(addresses)
        assert counting.paths("POST") == ["/v1/devices/lookup"] * 3
        sizes = [len(json.loads(r.content)["devices"]) for r in counting.requests]
        assert sizes == [1_000, 1_000, 345]
        assert height == chain.height and len(devices) == len(addresses)
        found = [i for i, d in enumerate(devices) if d is not None]
        assert found == [0, 999, 1_000, len(addresses) - 1]
        assert {d.device for d in devices if d is not None} == {known}


def test_devices_over_several_heights_answer_the_lowest() -> None:
    chain = make_chain()
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "P")
    keys = AccountKeys.generate()
    proof = keys.sign(registration_message(chain.chain_id, patient.address))
    patient.send(
        "devices.register",
        RegisterDeviceArgs(keys.public_key, patient.address, DeviceKind.ECG, b"", proof),
    )
    device = chain.device(keys.address)
    assert device is not None
    heights = [9, 7, 8]

    def handler(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["devices"]
        return httpx.Response(
            200,
            json={
                "height": heights.pop(0),
                "devices": [{"encoded": encode(device).hex()} for _ in asked],
            },
        )

    height, devices = _mock(handler).devices([keys.address] * (2 * MAX_DEVICE_LOOKUP + 1))
    assert height == 7 and heights == [] and devices == [device] * (2 * MAX_DEVICE_LOOKUP + 1)


def test_a_lying_node_cannot_answer_other_devices() -> None:
    chain = make_chain()
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "P")
    keys = AccountKeys.generate()
    proof = keys.sign(registration_message(chain.chain_id, patient.address))
    patient.send(
        "devices.register",
        RegisterDeviceArgs(keys.public_key, patient.address, DeviceKind.ECG, b"", proof),
    )
    encoded = {"encoded": encode(chain.device(keys.address)).hex()}
    other = AccountKeys.generate().address
    for answer, what in [
        ({"height": 3, "devices": [encoded]}, "other addresses"),
        ({"height": 3, "devices": []}, "0 devices for a lookup of 1"),
        ({"height": "3", "devices": [None]}, "malformed device lookup"),
        ({"devices": [None]}, "no 'height'"),
        ({"height": 3, "devices": [{"encoded": "zz"}]}, "no valid encoded Device"),
    ]:
        liar = _mock(lambda request, answer=answer: httpx.Response(200, json=answer))
        with pytest.raises(NodeError, match=what) as caught:
            liar.devices([other])
        assert caught.value.code == "bad_response"
    assert decode(Device, bytes.fromhex(encoded["encoded"])).device == keys.address


def test_put_many_in_batches_signed_by_the_gateway(node: Served, gateway: AccountKeys) -> None:
    counting = Counting()
    with HttpChain(node.url, timeout_s=10, transport=counting) as chain:
        store = chain.bulk_blobs(gateway)
        assert chain.chain_id == "medchain-test"  # the genesis is read once, before counting
        counting.requests.clear()
        blobs = [f"bundle {i}".encode() * 10 for i in range(25)] + [b"", b"bundle 0" * 10]
        assert store.put_many(blobs) == [cid_for(b) for b in blobs]
        assert counting.paths("POST") == ["/v1/blobs/batch"]
        (request,) = counting.requests
        signature = bytes.fromhex(request.headers[UPLOAD_SIGNATURE_HEADER])
        expires = int(request.headers[UPLOAD_EXPIRES_HEADER])
        assert request.headers[UPLOADER_HEADER] == gateway.public_key.hex()
        signed_bytes = bulk_upload_signing_bytes(chain.chain_id, expires, request.content)
        assert verify_signature(gateway.public_key, signed_bytes, signature)
        assert all(chain.blobs.has(cid_for(b)) for b in blobs)
        counting.requests.clear()
        assert store.put_many([]) == [] and counting.requests == []


def test_put_many_splits_under_the_limits(node: Served, gateway: AccountKeys) -> None:
    counting = Counting()
    with HttpChain(node.url, timeout_s=10, transport=counting) as chain:
        store = chain.bulk_blobs(gateway)
        store.max_batch_bytes = 1_000
        store.max_batch_blobs = 4
        assert chain.chain_id == "medchain-test"  # the genesis is read once, before counting
        counting.requests.clear()
        blobs = [os.urandom(300) for _ in range(5)] + [os.urandom(2_000)] + [b"a", b"b", b"c"]
        blobs += [bytes([i]) for i in range(7)]
        assert store.put_many(blobs) == [cid_for(b) for b in blobs]
        # 300-byte blobs three to a request (the bytes), the big one alone, then the
        # small ones four to a request (the count).
        sizes = [len(r.content) for r in counting.requests]
        assert counting.paths("POST") == ["/v1/blobs/batch"] * 6
        assert sizes[2] > 2_000 and all(size <= 1_000 for i, size in enumerate(sizes) if i != 2)
        assert all(chain.blobs.has(cid_for(b)) for b in blobs)
    assert HttpChain(node.url).blobs.max_batch_blobs == MAX_BLOB_BATCH_BLOBS


def test_put_many_checks_every_cid_and_every_blob() -> None:
    keys = AccountKeys.generate()
    wrong = _mock_store(
        keys, lambda request: httpx.Response(200, json={"cids": [cid_for(b"x"), "y"]})
    )
    with pytest.raises(NodeError, match="does not name"):
        wrong.put_many([b"x", b"y"])
    short = _mock_store(keys, lambda request: httpx.Response(200, json={"cids": [cid_for(b"x")]}))
    with pytest.raises(NodeError, match="no list of 2 CIDs"):
        short.put_many([b"x", b"y"])
    refused = _mock_store(
        keys,
        lambda request: httpx.Response(
            413, json={"error": {"code": "too_many_blobs", "message": "split it"}}
        ),
    )
    with pytest.raises(NodeError, match="split it") as caught:
        refused.put_many([b"x"])
    assert caught.value.status == 413
    nothing_sent = _mock_store(keys, lambda request: pytest.fail("nothing is sent"))
    with pytest.raises(TypeError, match="blob 1"):
        nothing_sent.put_many([b"x", "y"])  # type: ignore[list-item]


def _mock_store(keys: AccountKeys, handler: Callable[[httpx.Request], httpx.Response]) -> BlobStore:
    """A gateway's blob store on a mock node, which answers its genesis and `handler`."""
    genesis = {"encoded": encode(make_chain().genesis).hex()}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/genesis":
            return httpx.Response(200, json=genesis)
        return handler(request)

    return _mock(answer).bulk_blobs(keys)


# -- no node, or not a medchain node ----------------------------------------------------


def test_no_node_is_a_clear_error() -> None:
    with (
        HttpChain("http://127.0.0.1:9", timeout_s=2) as chain,
        pytest.raises(NodeUnreachable) as unreachable,
    ):
        chain.account(AccountKeys.generate().address)
    message = unreachable.value.message
    assert "http://127.0.0.1:9" in message and "medchain devnet up" in message
    for url in ("127.0.0.1:8600", "ftp://node", "http://", ""):
        with pytest.raises(NodeUnreachable, match="not a node URL"):
            HttpChain(url)


def _mock(handler: object) -> HttpChain:
    return HttpChain("http://node", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_not_a_medchain_node() -> None:
    html = _mock(lambda request: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(NodeError, match="medchain node") as bad:
        html.account(b"\x01" * 20)
    assert bad.value.code == "bad_response"
    broken = _mock(lambda request: httpx.Response(500, text="Internal Server Error"))
    with pytest.raises(NodeError) as failed:
        broken.record(b"\x01" * 16)
    assert failed.value.status == 500 and failed.value.code == "bad_response"
    lost = _mock(lambda request: httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(NodeError):  # a 404 without our code is not "no such record"
        lost.record(b"\x01" * 16)
    garbled = _mock(lambda request: httpx.Response(200, json={"encoded": "zz"}))
    with pytest.raises(NodeError, match="no valid encoded Account"):
        garbled.account(b"\x01" * 20)


def test_a_lying_node_cannot_pass_other_bytes_for_a_blob() -> None:
    liar = _mock(lambda request: httpx.Response(200, content=b"other bytes"))
    with pytest.raises(BlobCorrupted, match="another node"):
        liar.blobs.get(cid_for(b"the real bytes"))
    wrong_cid = _mock_store(
        AccountKeys.generate(), lambda request: httpx.Response(200, json={"cids": [cid_for(b"x")]})
    )
    with pytest.raises(NodeError, match="does not name"):
        wrong_cid.put(b"y")


def test_full_mempool_is_retried_as_asked() -> None:
    chain = make_chain()
    keys = AccountKeys.generate()
    tx = _register(keys)
    receipt = chain.submit(tx)
    answers = [
        httpx.Response(
            503,
            headers={"retry-after": "0"},
            json={"error": {"code": "mempool_full", "message": "full; retry shortly"}},
        ),
        httpx.Response(
            200,
            json={
                "tx_hash": receipt.tx_id.hex(),
                "status": "committed",
                "receipt": {"encoded": encode(receipt).hex()},
            },
        ),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    assert _mock(handler).submit(tx) == receipt
    assert len(seen) == 2 and seen[0].url.params["wait"] == "true"
    full = _mock(
        lambda request: httpx.Response(
            503, json={"error": {"code": "mempool_full", "message": "full; retry shortly"}}
        )
    )
    with pytest.raises(NodeError) as refused:  # no Retry-After: not retried
        full.submit(tx)
    assert refused.value.code == "mempool_full"
