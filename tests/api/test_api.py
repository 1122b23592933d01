"""Every endpoint of the API over a chain with something of everything on it: the
JSON for people, `encoded` decoding to exactly what the chain holds."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from medchain.api import MAX_BATCH_TXS
from medchain.app import (
    MAX_TOKEN_EPOCHS,
    Account,
    AnonEntry,
    AnonScope,
    AuditEntry,
    Candidate,
    Identity,
    PurposeOfUse,
    Record,
    RecordVersion,
    RegisterArgs,
    ResearchEntry,
    Role,
    StakeAccount,
    TransferArgs,
    UnwarrantArgs,
)
from medchain.client import MedchainClient
from medchain.crypto import LABEL_KEY_SIZE, AccountKeys, SearchToken, format_address
from medchain.node import LedgerApp, PeerStatus, PendingFull, genesis_hash
from medchain.store import MAX_HEIGHT
from medchain.types import (
    Block,
    ChainParams,
    Genesis,
    GenesisValidator,
    Receipt,
    block_hash,
    decode,
    encode,
    tx_id,
)
from tests.api.conftest import EXAMPLES, SCOPE, World
from tests.api.harness import (
    FakeNode,
    api_client,
    clinician,
    make_chain,
    ok,
    read_as,
    refused,
    signed,
)

CONDITION = json.loads((EXAMPLES / "condition.json").read_text())


def _register(keys: AccountKeys, nonce: int = 0) -> str:
    args = RegisterArgs(Role.PATIENT, "", keys.encryption_public_key)
    return signed(keys, nonce, "registry.register", args).encoded.hex()


# -- transactions ----------------------------------------------------------------------


def test_submit_and_wait_commits_with_receipt(world: World) -> None:
    keys = AccountKeys.generate()
    body = ok(world.api.post("/v1/txs?wait=true", json={"tx": _register(keys)}))
    assert body["status"] == "committed" and body["receipt"]["ok"]
    height, index = world.chain.tx_location(bytes.fromhex(body["tx_hash"])) or (0, 0)
    assert (body["height"], body["index"]) == (height, index)
    receipt = decode(Receipt, bytes.fromhex(body["receipt"]["encoded"]))
    assert receipt == world.chain.receipt(bytes.fromhex(body["tx_hash"]))
    assert body["receipt"]["events"][0]["attributes"]["address"] == keys.address_text
    # submitting it again is harmless: 200 with the same receipt
    again = ok(world.api.post("/v1/txs", json={"tx": _register(keys)}))
    assert again == body


def test_pending_until_committed(world: World) -> None:
    world.node.auto_commit = False
    keys = AccountKeys.generate()
    tx = _register(keys)
    body = ok(world.api.post("/v1/txs", json={"tx": tx}), 202)
    assert body == {
        "tx_hash": body["tx_hash"],
        "status": "pending",
        "height": None,
        "index": None,
        "receipt": None,
    }
    assert ok(world.api.post("/v1/txs", json={"tx": tx}), 202)["status"] == "pending"
    waited = world.api.post("/v1/txs", params={"wait": "true", "timeout_s": 0.05}, json={"tx": tx})
    assert ok(waited, 202)["status"] == "pending"
    assert ok(world.api.get(f"/v1/txs/{body['tx_hash']}"))["status"] == "pending"
    world.node.commit()
    committed = ok(world.api.get(f"/v1/txs/{body['tx_hash']}"))
    assert committed["status"] == "committed" and committed["receipt"]["ok"]


def test_refused_access_controlled_call_is_a_403_at_submission(world: World) -> None:
    nonce = world.chain.account(world.lab.address).nonce
    height, record = world.chain.height, world.chain.record(world.record_id)
    args = UnwarrantArgs(world.record_id, world.doctor.address)  # the lab does not own it
    tx = signed(world.lab.keys, nonce, "records.unwarrant", args)
    answer = world.api.post("/v1/txs?wait=1", json={"tx": tx.encoded.hex()})
    assert "only the patient" in refused(answer, 403, "not_owner")
    assert world.chain.account(world.lab.address).nonce == nonce  # nothing spent
    assert world.chain.height == height and world.chain.receipt(tx_id(tx)) is None
    assert world.chain.record(world.record_id) == record


def test_refused_call_of_an_open_method_is_committed_with_a_failed_receipt(
    world: World,
) -> None:
    nonce = world.chain.account(world.patient.address).nonce
    args = TransferArgs(world.lab.address, 10**15)  # more than the patient holds
    tx = signed(world.patient.keys, nonce, "accounts.transfer", args).encoded.hex()
    body = ok(world.api.post("/v1/txs?wait=1", json={"tx": tx}))
    assert body["receipt"]["ok"] is False and body["receipt"]["code"] == "balance_too_low"


def test_conflicts_are_409_and_bad_arguments_422_at_submission(world: World) -> None:
    nonce = world.chain.account(world.patient.address).nonce
    again = RegisterArgs(Role.PATIENT, "", world.patient.keys.encryption_public_key)
    tx = signed(world.patient.keys, nonce, "registry.register", again)
    refused(world.api.post("/v1/txs", json={"tx": tx.encoded.hex()}), 409, "already_registered")
    stranger = AccountKeys.generate()
    bad_key = RegisterArgs(Role.PATIENT, "", b"short")
    tx = signed(stranger, 0, "registry.register", bad_key)
    refused(world.api.post("/v1/txs", json={"tx": tx.encoded.hex()}), 422, "invalid_argument")
    assert world.chain.identity(stranger.address) is None


def test_rejected_transactions(world: World) -> None:
    keys = AccountKeys.generate()
    ok(world.api.post("/v1/txs?wait=true", json={"tx": _register(keys)}))
    replay = signed(keys, 0, "accounts.transfer", TransferArgs(keys.address, 0)).encoded.hex()
    assert "nonce" in refused(world.api.post("/v1/txs", json={"tx": replay}), 409, "nonce_reused")
    other = signed(keys, 1, "registry.register", RegisterArgs(Role.PATIENT, "", b""), "elsewhere")
    refused(world.api.post("/v1/txs", json={"tx": other.encoded.hex()}), 400, "wrong_chain")
    refused(world.api.post("/v1/txs", json={"tx": "c0"}), 400, "malformed_tx")
    refused(world.api.post("/v1/txs", json={"tx": "xyz"}), 400, "invalid_hex")
    huge = "00" * (world.chain.params.max_tx_bytes + 1)
    refused(world.api.post("/v1/txs", json={"tx": huge}), 413, "tx_too_large")
    too_long = world.api.post("/v1/txs?timeout_s=61", json={"tx": "c0"})
    assert "at most 60" in refused(too_long, 400, "out_of_range")
    refused(world.api.post("/v1/txs", json={"txs": "c0"}), 422, "invalid_request")


def test_full_mempool_is_503_with_retry_after(world: World) -> None:
    world.node.auto_commit = False
    world.node.max_pending = 1
    ok(world.api.post("/v1/txs", json={"tx": _register(AccountKeys.generate())}), 202)
    response = world.api.post("/v1/txs", json={"tx": _register(AccountKeys.generate())})
    assert "retry" in refused(response, 503, PendingFull.code)
    assert int(response.headers["retry-after"]) >= 1


def test_batch_reports_each_transaction(world: World) -> None:
    world.node.auto_commit = False
    a, b = AccountKeys.generate(), AccountKeys.generate()
    committed = world.api.post("/v1/txs", json={"tx": _register(a)})
    world.node.commit()
    txs = [_register(a), _register(b), _register(b), "zz", "c0"]
    body = ok(world.api.post("/v1/txs/batch", json={"txs": txs}))
    codes = [r["error"]["code"] if r["error"] else None for r in body["results"]]
    assert codes == ["already_committed", None, "already_pending", "invalid_hex", "malformed_tx"]
    assert [r["accepted"] for r in body["results"]] == [False, True, False, False, False]
    assert body["accepted"] == 1
    assert body["results"][0]["tx_hash"] == committed.json()["tx_hash"]
    assert body["results"][3]["tx_hash"] is None
    too_many = ["c0"] * (MAX_BATCH_TXS + 1)
    refused(world.api.post("/v1/txs/batch", json={"txs": too_many}), 422, "invalid_request")
    refused(world.api.post("/v1/txs/batch", json={"txs": []}), 422, "invalid_request")


def test_tx_status_errors(world: World) -> None:
    refused(world.api.get(f"/v1/txs/{'ab' * 32}"), 404, "unknown_tx")
    assert "64 hex" in refused(world.api.get("/v1/txs/abcd"), 400, "invalid_hex")
    refused(world.api.get("/v1/txs/not-hex"), 400, "invalid_hex")


# -- blocks, genesis, validators ------------------------------------------------------------


def test_blocks(world: World) -> None:
    latest = ok(world.api.get("/v1/blocks/latest"))
    block = world.chain.latest_block()
    assert decode(Block, bytes.fromhex(latest["encoded"])) == block
    assert latest["height"] == block.height and latest["tx_hashes"] == [
        tx_id(tx).hex() for tx in block.txs
    ]
    (signer,) = latest["certificate"]["signers"]
    assert signer == {
        "public_key": world.chain.validator.public_key.hex(),
        "address": world.chain.validator.address_text,
        "name": "v0",
    }
    first = ok(world.api.get("/v1/blocks/1"))
    assert decode(Block, bytes.fromhex(first["encoded"])) == world.chain.block_at(1)
    genesis_block = ok(world.api.get("/v1/blocks/0"))
    assert genesis_block["certificate"]["signers"] == []
    refused(world.api.get(f"/v1/blocks/{block.height + 1}"), 404, "unknown_block")
    refused(world.api.get(f"/v1/blocks/{MAX_HEIGHT}"), 404, "unknown_block")
    assert str(MAX_HEIGHT) in refused(world.api.get(f"/v1/blocks/{10**30}"), 400, "out_of_range")
    refused(world.api.get("/v1/blocks/-1"), 400, "out_of_range")
    refused(world.api.get("/v1/blocks/one"), 422, "invalid_request")


def test_block_summaries(world: World) -> None:
    """What a follower needs of each block, lighter than the block itself."""
    chain = world.chain
    latest = chain.height
    assert latest >= 2
    body = ok(world.api.get("/v1/blocks", params={"from_height": 1, "limit": 2}))
    assert body["latest"] == latest
    assert [b["height"] for b in body["blocks"]] == [1, 2]
    for summary in body["blocks"]:
        block = chain.block_at(summary["height"])
        assert block is not None
        assert summary == {
            "height": block.height,
            "hash": block_hash(block.header).hex(),
            "time_ms": block.header.time_ms,
            "proposer": format_address(block.header.proposer),
            "tx_hashes": [tx_id(tx).hex() for tx in block.txs],
        }
        full = world.api.get(f"/v1/blocks/{block.height}")
        assert len(json.dumps(summary)) < len(full.text)
    everything = ok(world.api.get("/v1/blocks"))["blocks"]
    assert [b["height"] for b in everything] == list(range(latest + 1))
    assert ok(world.api.get("/v1/blocks", params={"from_height": latest + 1})) == {
        "latest": latest,
        "blocks": [],
    }
    refused(world.api.get("/v1/blocks", params={"limit": 0}), 400, "out_of_range")
    refused(world.api.get("/v1/blocks", params={"limit": 101}), 400, "out_of_range")
    refused(world.api.get("/v1/blocks", params={"from_height": -1}), 400, "out_of_range")


def test_genesis(world: World) -> None:
    body = ok(world.api.get("/v1/genesis"))
    genesis = world.chain.genesis
    assert decode(Genesis, bytes.fromhex(body["encoded"])) == genesis
    assert body["hash"] == genesis_hash(genesis).hex()
    assert body["params"] == dataclasses.asdict(genesis.params)
    assert body["allocations"] == [
        {"address": format_address(a.address), "amount": a.amount} for a in genesis.allocations
    ]
    assert body["validators"][0]["name"] == "v0"


def test_validators(world: World) -> None:
    body = ok(world.api.get("/v1/validators"))
    assert body["consensus"] == "pbft" and body["height"] == world.chain.height
    (validator,) = body["validators"]
    assert validator == {
        "name": "v0",
        "public_key": world.chain.validator.public_key.hex(),
        "address": world.chain.validator.address_text,
        "power": 1,
        "bonded": world.chain.stake(world.validator.address).bonded,
        "votes": 3_000,
        "banned": False,
        "banned_until": 0,
        "voting": True,
        "primary_candidate": None,
    }


def test_validators_under_dpos_on_a_chain_that_cannot_tell() -> None:
    api = api_client(FakeNode(make_chain(consensus="dpos")))
    (validator,) = ok(api.get("/v1/validators"))["validators"]
    assert validator["voting"] is None


class _LedgerNode(FakeNode):
    """The committed state as the networked node holds it (a LedgerApp)."""

    def __init__(self, genesis: Genesis) -> None:
        super().__init__(make_chain())
        self.ledger_app = LedgerApp(genesis)

    @property
    def genesis(self) -> Genesis:
        return self.ledger_app.genesis

    @property
    def chain(self) -> LedgerApp:  # type: ignore[override]
        return self.ledger_app


@pytest.mark.parametrize("consensus", ["dpos", "afbft"])
def test_validators_of_a_networked_chain(consensus: str) -> None:
    keys = [AccountKeys.generate() for _ in range(5)]
    genesis = Genesis(
        "medchain-test",
        0,
        ChainParams(consensus=consensus, committee_size=4, primary_candidates=3),
        validators=tuple(GenesisValidator(k.public_key, f"v{i}") for i, k in enumerate(keys)),
    )
    body = ok(api_client(_LedgerNode(genesis)).get("/v1/validators"))
    assert body["consensus"] == consensus and body["height"] == 0
    flags = [(v["voting"], v["primary_candidate"]) for v in body["validators"]]
    if consensus == "dpos":  # no votes yet: the first committee_size genesis validators
        assert flags == [(True, None)] * 4 + [(False, None)]
    else:  # every genesis validator votes; the first three are primary candidates
        assert flags == [(True, True)] * 3 + [(True, False)] * 2


# -- accounts and the registry ----------------------------------------------------------------


def test_accounts_and_identities(world: World) -> None:
    address = world.patient.keys.address_text
    body = ok(world.api.get(f"/v1/accounts/{address}"))
    assert decode(Account, bytes.fromhex(body["encoded"])) == world.chain.account(
        world.patient.address
    )
    assert body["address"] == address and body["nonce"] == 2
    unknown = AccountKeys.generate().address_text
    assert ok(world.api.get(f"/v1/accounts/{unknown}"))["balance"] == 0

    identity = ok(world.api.get(f"/v1/identities/{world.lab.keys.address_text}"))
    assert identity["role"] == "institution" and identity["name"] == "test-research (test)"
    assert decode(Identity, bytes.fromhex(identity["encoded"])) == world.chain.identity(
        world.lab.address
    )
    refused(world.api.get(f"/v1/identities/{unknown}"), 404, "not_registered")
    typo = address[:-1] + ("q" if address[-1] != "q" else "p")
    assert "checksum" in refused(world.api.get(f"/v1/accounts/{typo}"), 400, "invalid_address")
    refused(world.api.get("/v1/identities/0xabc"), 400, "invalid_address")


def test_roles(world: World) -> None:
    # the patient, the doctor (a self-registered account is a patient) and three more
    assert ok(world.api.get("/v1/roles/patient")) == {"role": "patient", "count": 5}
    member = ok(world.api.get("/v1/roles/patient/0"))
    assert member["address"] == world.patient.keys.address_text
    refused(world.api.get("/v1/roles/patient/5"), 404, "no_member")
    refused(world.api.get(f"/v1/roles/patient/{2**64 - 1}"), 404, "no_member")
    refused(world.api.get(f"/v1/roles/patient/{2**64}"), 400, "out_of_range")
    assert "patient" in refused(world.api.get("/v1/roles/wizard"), 422, "invalid_request")
    refused(world.api.get("/v1/roles/doctor/-1"), 400, "out_of_range")


def test_stakes_and_candidates(world: World) -> None:
    address = world.validator.keys.address_text
    stake = ok(world.api.get(f"/v1/stakes/{address}"))
    assert decode(StakeAccount, bytes.fromhex(stake["encoded"])) == world.chain.stake(
        world.validator.address
    )
    assert stake["votes"] == [{"candidate": address, "amount": 3_000}]
    (candidate,) = ok(world.api.get("/v1/candidates"))["candidates"]
    assert candidate["address"] == address and candidate["votes"] == 3_000
    assert decode(Candidate, bytes.fromhex(candidate["encoded"])) == world.chain.candidates()[0]


# -- records ----------------------------------------------------------------------------


def test_records(world: World) -> None:
    rid = world.record_id.hex()
    record = ok(world.api.get(f"/v1/records/{rid}"))
    assert decode(Record, bytes.fromhex(record["encoded"])) == world.chain.record(world.record_id)
    assert record["owner"] == world.patient.keys.address_text
    assert record["readers"] == [world.doctor.keys.address_text]
    assert record["resource_type"] == "Condition"

    owner = read_as(world.patient, PurposeOfUse.PATIENT_REQUEST)
    version = ok(world.api.get(f"/v1/records/{rid}/versions/1", auth=owner))
    stored = world.chain.record_version(world.record_id, 1)
    assert stored is not None
    assert decode(RecordVersion, bytes.fromhex(version["encoded"])) == stored
    assert {w["reader"] for w in version["wraps"]} == {
        world.patient.keys.address_text,
        world.doctor.keys.address_text,
    }
    refused(world.api.get(f"/v1/records/{rid}/versions/2", auth=owner), 404, "unknown_version")
    too_far = f"/v1/records/{rid}/versions/{2**32 - 1}"
    refused(world.api.get(too_far, auth=owner), 404, "unknown_version")
    refused(world.api.get(f"/v1/records/{rid}/versions/{2**32}", auth=owner), 400, "out_of_range")
    refused(world.api.get(f"/v1/records/{rid}/versions/0", auth=owner), 400, "out_of_range")

    audit = ok(world.api.get(f"/v1/records/{rid}/audit"))
    entries = world.chain.audit(world.record_id)
    assert [e["action"] for e in audit["entries"]] == [e.action.value for e in entries]
    assert audit["entries"][-1]["action"] == "research_granted"
    assert [decode(AuditEntry, bytes.fromhex(e["encoded"])) for e in audit["entries"]] == entries
    assert audit["entries"][0]["subject"] == ""

    unknown = "ab" * 16
    for path in ("", "/versions/1", "/audit"):
        refused(world.api.get(f"/v1/records/{unknown}{path}", auth=owner), 404, "unknown_record")
        invalid = world.api.get(f"/v1/records/abc{path}", auth=owner)
        assert "32 hex" in refused(invalid, 400, "invalid_hex")

    patient = world.patient.keys.address_text
    listed = ok(world.api.get(f"/v1/patients/{patient}/records"))
    assert listed == {"patient": patient, "record_ids": [rid]}
    nobody = AccountKeys.generate().address_text  # well-formed, but no patient
    message = refused(world.api.get(f"/v1/patients/{nobody}/records"), 404, "not_registered")
    assert "not a patient on this chain" in message and "--role patient" in message
    lab = world.lab.keys.address_text  # registered, but not a patient
    refused(world.api.get(f"/v1/patients/{lab}/records"), 404, "not_registered")
    assert world.chain.patient_records(AccountKeys.generate().address) == []


def test_search(world: World) -> None:
    owner = world.doctor.keys.address_text
    world.api.auth = read_as(world.doctor)
    body = ok(
        world.api.post("/v1/search", json={"owner": owner, "token": encode(world.token).hex()})
    )
    expected = world.chain.search(world.doctor.address, world.token)
    assert body["values"] == [[v.hex() for v in values] for values in expected]
    assert body["values"] and body["values"][0]
    malformed = world.api.post("/v1/search", json={"owner": owner, "token": "c0c0"})
    refused(malformed, 400, "malformed_token")
    refused(world.api.post("/v1/search", json={"owner": owner, "token": "q"}), 400, "invalid_hex")
    refused(
        world.api.post("/v1/search", json={"owner": "x", "token": "c0"}), 400, "invalid_address"
    )
    refused(world.api.post("/v1/search", json={"owner": owner}), 422, "invalid_request")
    too_many = SearchToken((b"\x00" * LABEL_KEY_SIZE,) * (MAX_TOKEN_EPOCHS + 1))
    body = {"owner": owner, "token": encode(too_many).hex()}
    refused(world.api.post("/v1/search", json=body), 400, "invalid_argument")


def test_research(world: World) -> None:
    lab = world.lab.keys.address_text
    body = ok(world.api.get(f"/v1/research/{lab}", auth=read_as(world.lab, PurposeOfUse.RESEARCH)))
    (entry,) = body["entries"]
    assert (
        decode(ResearchEntry, bytes.fromhex(entry["encoded"]))
        == world.chain.research_data(world.lab.address)[0]
    )
    assert entry["patient"] == world.patient.keys.address_text and entry["institution"] == lab


def test_anonymous_scopes(world: World) -> None:
    quoted = httpx.URL(f"/v1/anon/{SCOPE.replace('/', '%2F')}")
    scope = ok(world.api.get(quoted))
    assert decode(AnonScope, bytes.fromhex(scope["encoded"])) == world.chain.anon_scope(SCOPE)
    assert scope["name"] == SCOPE and scope["count"] == 1
    assert scope["recipient"] == world.lab.keys.address_text
    entries = ok(world.api.get(f"/v1/anon/{SCOPE}/entries"))
    (entry,) = entries["entries"]
    assert decode(AnonEntry, bytes.fromhex(entry["encoded"])) == world.chain.anon_entries(SCOPE)[0]
    assert len(entry["ring"]) == 3 and all(a.startswith("mc1") for a in entry["ring"])
    refused(world.api.get("/v1/anon/nope"), 404, "unknown_scope")
    refused(world.api.get("/v1/anon/nope/entries"), 404, "unknown_scope")


# -- blobs ------------------------------------------------------------------------------


def test_corrupted_blob_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    chain = make_chain()
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "Jane Roe")
    record_id = clinician(chain, "Dr. Who").put_record(patient.address, CONDITION)
    version = chain.record_version(record_id, 1)
    assert version is not None
    chain.blobs._blobs[version.cid] = b"tampered"  # type: ignore[attr-defined]
    api = api_client(FakeNode(chain))
    query = f"?record={record_id.hex()}&version=1"
    found = api.get(f"/v1/blobs/{version.cid}{query}", auth=read_as(patient))
    refused(found, 500, "blob_corrupted")
    assert "blob_corrupted" in caplog.text


# -- the node ----------------------------------------------------------------------------


def test_status(world: World) -> None:
    body = ok(world.api.get("/v1/status"))
    block = world.chain.latest_block()
    assert body["height"] == block.height and body["chain_id"] == "medchain-test"
    assert body["latest_hash"] == block.certificate.block_hash.hex()
    assert body["primary"] == world.chain.validator.public_key.hex()
    assert body["peers"] == [] and body["syncing"] is False


def _peer(connected: bool) -> PeerStatus:
    return PeerStatus(b"\x01" * 32, "peer", "10.0.0.2:8700", connected, True)


def test_health() -> None:
    alone = ok(api_client(FakeNode(make_chain())).get("/health"))
    assert alone["status"] == "ok" and alone["peers_configured"] == 0
    connected = api_client(FakeNode(make_chain(), peers=(_peer(True), _peer(False))))
    assert ok(connected.get("/health"))["peers_connected"] == 1
    cut_off = api_client(FakeNode(make_chain(), peers=(_peer(False),))).get("/health")
    assert cut_off.status_code == 503
    assert cut_off.json()["status"] == "unhealthy" and cut_off.json()["reason"]


def test_metrics_are_prometheus_text(world: World) -> None:
    world.api.get("/v1/genesis")
    world.api.get("/v1/records/zz")
    response = world.api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = families["medchain_api_requests"]
    seen = {
        (s.labels["route"], s.labels["status"])
        for s in requests.samples
        if s.name.endswith("_total")
    }
    assert ("/v1/genesis", "200") in seen and ("/v1/records/{record_id}", "400") in seen
    assert "medchain_api_request_seconds" in families


def test_docs_and_openapi(world: World) -> None:
    docs = world.api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = ok(world.api.get("/openapi.json"))
    assert schema["info"]["title"] == "medchain node API"
    paths = set(schema["paths"])
    for path in (
        "/v1/txs",
        "/v1/txs/batch",
        "/v1/txs/{tx_hash}",
        "/v1/blocks",
        "/v1/blocks/latest",
        "/v1/blocks/{height}",
        "/v1/genesis",
        "/v1/accounts/{address}",
        "/v1/identities/{address}",
        "/v1/records/{record_id}",
        "/v1/records/{record_id}/versions/{number}",
        "/v1/records/{record_id}/audit",
        "/v1/patients/{address}/records",
        "/v1/search",
        "/v1/research/{institution}",
        "/v1/anon/{scope}",
        "/v1/anon/{scope}/entries",
        "/v1/roles/{role}",
        "/v1/roles/{role}/{index}",
        "/v1/stakes/{address}",
        "/v1/candidates",
        "/v1/validators",
        "/v1/blobs/batch",
        "/v1/blobs/{cid}",
        "/v1/status",
        "/health",
        "/metrics",
    ):
        assert path in paths, path
    submit = schema["paths"]["/v1/txs"]["post"]
    assert {"200", "202", "400", "422"} <= set(submit["responses"])
    assert "ErrorBody" in str(submit["responses"]["400"])
    assert world.api.get("/", follow_redirects=False).headers["location"] == "/docs"


def test_unknown_endpoint_and_method(world: World) -> None:
    assert "/docs" in refused(world.api.get("/v2/nothing"), 404, "not_found")
    refused(world.api.delete("/v1/genesis"), 405, "method_not_allowed")
