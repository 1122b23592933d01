"""Erasure on the nodes: when `records.erase` commits, every node deletes the record's
ciphertexts, refuses to store them again (upload, bulk upload, a peer's copy) and
answers reads of them with 410 `record_erased`; a node that lost its list (or joined
from a snapshot after the erasure) rebuilds it from the chain's state. Two nodes in
process (a validator and an observer) over real P2P on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from medchain.api import create_api
from medchain.app import (
    AddVersionArgs,
    CreateRecordArgs,
    EraseArgs,
    PurposeOfUse,
    RecordErased,
    RegisterArgs,
    Role,
    new_record_id,
)
from medchain.client import seal
from medchain.client._envelope import version_context
from medchain.crypto import AccountKeys, load_keys, sign_read_request, signed_tx
from medchain.node import (
    BLOBS_DIR,
    ERASED_FILE,
    ErasedBlobs,
    ErasureGuard,
    LocalChain,
    Node,
    create_devnet,
    free_port_base,
    read_config,
)
from medchain.offchain import BlobNotFound, LocalBlobStore, cid_for
from medchain.types import Allocation, Genesis, GenesisValidator, Tx, decode, tx_id
from tests.waiting import until

# -- the list of erased blobs ------------------------------------------------------------


def test_an_erased_blob_is_deleted_and_never_stored_or_served_again(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    erased = ErasedBlobs(tmp_path / ERASED_FILE, store)
    guard = ErasureGuard(store, erased)
    kept, gone = guard.put(b"kept"), guard.put(b"erased")
    erased.erase([gone])
    assert not store.path_for(gone).exists() and store.has(kept)
    assert not guard.has(gone)
    for attempt in (
        lambda: guard.put(b"erased"),
        lambda: guard.put_many([b"new", b"erased"]),
        lambda: guard.get(gone),
        lambda: guard.get_small(gone, 1024),
    ):
        with pytest.raises(RecordErased, match=f"blob {gone} belongs to a record"):
            attempt()
    assert not store.has(cid_for(b"new"))  # a refused batch stores nothing
    erased.close()
    again = ErasedBlobs(tmp_path / ERASED_FILE, store)  # the list survives a restart
    assert again.is_erased(gone) and not again.is_erased(kept)
    again.close()


def _chain(home: Path) -> tuple[LocalChain, AccountKeys]:
    validator, patient = AccountKeys.generate(), AccountKeys.generate()
    genesis = Genesis(
        "medchain-test",
        1_700_000_000_000,
        allocations=(Allocation(patient.address, 10**9),),
        validators=(GenesisValidator(validator.public_key, "v0"),),
    )
    chain = LocalChain.create(home, genesis, validator)
    register = RegisterArgs(
        Role.PATIENT, "", patient.encryption_public_key, b"", patient.ring_public_key
    )
    chain.submit(signed_tx(patient, chain.chain_id, 0, "registry.register", register))
    return chain, patient


def _create_tx(chain_id: str, patient: AccountKeys, nonce: int, body: bytes) -> tuple[Tx, bytes]:
    """The patient's records.create of a new record holding `body`, and its ciphertext."""
    record_id = new_record_id(patient.address, nonce)
    keys = {patient.address: patient.encryption_public_key}
    sealed = seal(body, version_context(record_id, 1), keys)
    cid = cid_for(sealed.ciphertext)
    args = CreateRecordArgs(
        patient.address, "Observation", cid, sealed.ciphertext_hash, sealed.wraps
    )
    return signed_tx(patient, chain_id, nonce, "records.create", args), sealed.ciphertext


def _same_body_tx(tx: Tx, patient: AccountKeys, nonce: int) -> Tx:
    """`tx` again at another nonce: a new record naming the same ciphertext."""
    args = decode(CreateRecordArgs, tx.args)
    return signed_tx(patient, tx.chain_id, nonce, "records.create", args)


def test_an_in_process_chain_deletes_at_commit_and_after_reopening_refuses(
    tmp_path: Path,
) -> None:
    chain, patient = _chain(tmp_path / "chain")
    tx, ciphertext = _create_tx(chain.chain_id, patient, 1, b'{"resourceType": "Observation"}')
    chain.submit_with_body(tx, ciphertext)
    cid = cid_for(ciphertext)
    assert chain.blobs.has(cid)
    record_id = new_record_id(patient.address, 1)
    chain.submit(signed_tx(patient, chain.chain_id, 2, "records.erase", EraseArgs(record_id)))
    assert not chain.blobs.has(cid)
    chain.close()
    reopened = LocalChain.open(tmp_path / "chain")  # its list comes back from the state
    with pytest.raises(RecordErased):
        reopened.submit_with_body(_same_body_tx(tx, patient, 3), ciphertext)
    assert not reopened.blobs.has(cid)
    reopened.close()


# -- two nodes ---------------------------------------------------------------------------


@dataclasses.dataclass
class Pair:
    validator: Node
    observer: Node
    patient: AccountKeys

    @property
    def chain_id(self) -> str:
        return self.validator.genesis.chain_id

    async def send(self, tx: Tx, body: bytes | None = None) -> None:
        """Submit to the validator (with its body, as POST /v1/records does) and wait
        until both nodes committed it."""
        node = self.validator
        if body is None:
            await node.submit(tx)
        else:
            await node.bodies.upload(self.patient.address_text, [body], lambda: node.submit(tx))
        receipt = await node.wait_committed(tx_id(tx), 60)
        assert receipt is not None and receipt.ok, receipt
        height = node.app.height
        await until(lambda: self.observer.app.height >= height, what="the observer following")


async def _pair(home: Path) -> Pair:
    base = free_port_base(2)
    devnet = create_devnet(
        home, 1, "pbft", observers=1, api_port=base, p2p_port=base + 500, block_interval_ms=50
    )
    validator_home, observer_home = (n.home for n in devnet.nodes)
    validator, observer = Node(validator_home), Node(observer_home)
    await validator.start()
    await observer.start()
    await until(lambda: observer.transport.connected(), what="the nodes connected")
    return Pair(validator, observer, load_keys(devnet.faucet_key))


async def _record_with_two_versions(pair: Pair) -> tuple[bytes, list[bytes]]:
    patient, chain_id = pair.patient, pair.chain_id
    register = RegisterArgs(
        Role.PATIENT, "", patient.encryption_public_key, b"", patient.ring_public_key
    )
    await pair.send(signed_tx(patient, chain_id, 0, "registry.register", register))
    create, first = _create_tx(chain_id, patient, 1, b'{"resourceType": "Observation"}')
    await pair.send(create, first)
    record_id = new_record_id(patient.address, 1)
    keys = {patient.address: patient.encryption_public_key}
    sealed = seal(b'{"resourceType": "Observation", "v": 2}', version_context(record_id, 2), keys)
    args = AddVersionArgs(
        record_id, cid_for(sealed.ciphertext), sealed.ciphertext_hash, sealed.wraps
    )
    version = signed_tx(patient, chain_id, 2, "records.add_version", args)
    await pair.send(version, sealed.ciphertext)
    return record_id, [first, sealed.ciphertext]


def _held(node: Node, cid: str) -> bool:
    """Whether the node's own store holds the blob (under its erasure guard)."""
    return LocalBlobStore(node.home / BLOBS_DIR).has(cid)


async def _get(api: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(api)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        return await client.get(path, headers=headers)


async def _head(api: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(api)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        return await client.head(path)


def _signed(keys: AccountKeys, chain_id: str, target: str) -> dict[str, str]:
    """A read signed by `keys` now, as the patient's client signs it."""
    now = time.time_ns() // 1_000_000
    purpose = PurposeOfUse.PATIENT_REQUEST.value
    return {"authorization": sign_read_request(keys, chain_id, "GET", target, now, purpose)}


def test_after_erasure_no_node_holds_the_ciphertexts_and_reads_are_gone(tmp_path: Path) -> None:
    async def scenario() -> None:
        pair = await _pair(tmp_path)
        try:
            record_id, bodies = await _record_with_two_versions(pair)
            cids = [cid_for(b) for b in bodies]
            for cid in cids:  # the observer fetches from the validator, and keeps a copy
                assert await pair.observer.blobs.fetch(cid) in bodies  # type: ignore[attr-defined]
            assert all(_held(n, c) for n in (pair.validator, pair.observer) for c in cids)

            erase = EraseArgs(record_id, "withdrawn")
            await pair.send(signed_tx(pair.patient, pair.chain_id, 3, "records.erase", erase))

            for node in (pair.validator, pair.observer):
                api = create_api(node)
                assert not any(_held(node, c) for c in cids), node.config.name
                for cid in cids:  # whether a node holds a blob is public
                    assert (await _head(api, f"/v1/blobs/{cid}")).status_code == 410
                version = f"/v1/records/{record_id.hex()}/versions/1"
                answer = await _get(api, version, _signed(pair.patient, pair.chain_id, version))
                assert answer.status_code == 410
                assert answer.json()["error"]["code"] == "record_erased"
                with pytest.raises(RecordErased):  # the same ciphertext, uploaded again
                    await node.bodies.upload(pair.patient.address_text, [bodies[0]])
                shown = (await _get(api, f"/v1/records/{record_id.hex()}")).json()
                assert shown["erased_height"] > 0 and shown["readers"] == []
            with pytest.raises(BlobNotFound, match="does not have it"):  # no peer serves it
                await pair.observer.peer_blobs.fetch(cids[0])
            height = min(pair.validator.app.height, pair.observer.app.height)
            ours, theirs = (n.app.store.block_at(height) for n in (pair.validator, pair.observer))
            assert ours is not None and theirs is not None
            assert ours.header.state_root == theirs.header.state_root
        finally:
            await pair.observer.close()
            await pair.validator.close()
        await _a_node_that_lost_its_list_rebuilds_it(pair.observer.home, cids)

    asyncio.run(scenario())


async def _a_node_that_lost_its_list_rebuilds_it(home: Path, cids: list[str]) -> None:
    """As a node that joined from a snapshot taken after the erasure: its list comes
    from the chain's state, before it serves or stores anything."""
    (home / ERASED_FILE).unlink()
    config = read_config(home)
    again = Node(home, config)
    try:
        assert all(again.erased.is_erased(cid) for cid in cids)
        assert not any(again.blobs.has(cid) for cid in cids)
    finally:
        await again.close()
