"""The body ledger and its collector: uploads count against their uploader's quota
until a committed transaction names them, a body once named is never collected (not
even when someone uploads the same bytes again under a transaction that never
commits), a body nobody named is deleted after the grace period, and blocks the
ledger missed are scanned before any collection."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from medchain.app import AddVersionArgs, CreateRecordArgs, RegisterArgs, Role, new_record_id
from medchain.client import seal
from medchain.client._envelope import version_context
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import (
    ANONYMOUS,
    FETCHED,
    Bodies,
    BodyLedger,
    LocalChain,
    OverQuota,
    uploader_of,
)
from medchain.offchain import LocalBlobStore, cid_for
from medchain.store import DiskFull
from medchain.types import Allocation, Genesis, GenesisValidator, Tx

GRACE_S = 3_600
HOUR_MS = GRACE_S * 1000


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


@dataclasses.dataclass
class World:
    chain: LocalChain
    bodies: Bodies
    clock: Clock
    patient: AccountKeys
    registry: CollectorRegistry

    def record(self, body: bytes, nonce: int) -> tuple[Tx, bytes]:
        """The patient's records.create of its own record holding `body`, and the
        sealed body the transaction names."""
        record_id = new_record_id(self.patient.address, nonce)
        sealed = seal(
            body,
            version_context(record_id, 1),
            {self.patient.address: self.patient.encryption_public_key},
        )
        args = CreateRecordArgs(
            self.patient.address,
            "Observation",
            cid_for(sealed.ciphertext),
            sealed.ciphertext_hash,
            sealed.wraps,
        )
        tx = signed_tx(self.patient, self.chain.chain_id, nonce, "records.create", args)
        return tx, sealed.ciphertext

    def upload(self, body: bytes, uploader: str | None = None) -> None:
        who = uploader if uploader is not None else self.patient.address_text
        asyncio.run(self.bodies.upload(who, [body]))

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


def _genesis(validator: AccountKeys) -> Genesis:
    return Genesis(
        "medchain-test",
        1_700_000_000_000,
        allocations=(Allocation(validator.address, 10**9),),
        validators=(GenesisValidator(validator.public_key, "v0"),),
    )


def _world(home: Path, quota_bytes: int = 64 * 2**20, follow: bool = True) -> World:
    validator = AccountKeys.generate()
    chain = LocalChain.create(home / "chain", _genesis(validator), validator)
    patient = AccountKeys.generate()
    register = RegisterArgs(
        Role.PATIENT, "", patient.encryption_public_key, b"", patient.ring_public_key
    )
    chain.submit(signed_tx(patient, chain.chain_id, 0, "registry.register", register))
    return _attach(chain, patient, home, quota_bytes, follow)


def _attach(
    chain: LocalChain, patient: AccountKeys, home: Path, quota_bytes: int, follow: bool
) -> World:
    clock = Clock()
    registry = CollectorRegistry()
    bodies = Bodies(
        chain.blobs,
        BodyLedger(home / "bodies.sqlite"),
        registry,
        quota_bytes=quota_bytes,
        grace_s=GRACE_S,
        clock_ms=clock,
    )
    if follow:
        bodies.catch_up(chain.store)
        chain.before_store = bodies.note_block
    return World(chain, bodies, clock, patient, registry)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return _world(tmp_path)


# -- the quota ------------------------------------------------------------------------


def test_the_quota_fills_and_is_freed_when_a_committed_transaction_names_the_body(
    tmp_path: Path,
) -> None:
    world = _world(tmp_path, quota_bytes=2_500)
    first, first_body = world.record(b"a" * 1_000, 1)
    _, second_body = world.record(b"b" * 1_000, 2)
    _, third_body = world.record(b"c" * 1_000, 3)
    me = world.patient.address_text
    world.upload(first_body)
    world.upload(second_body)
    assert world.bodies.usage(me) == len(first_body) + len(second_body)
    with pytest.raises(OverQuota) as refused:
        world.upload(third_body)
    assert "quota of 2,500 bytes" in refused.value.message and me in refused.value.message
    assert not world.chain.blobs.has(cid_for(third_body))
    refusals = world.registry.get_sample_value(
        "medchain_uploads_refused_total", {"reason": "over_quota"}
    )
    assert refusals == 1
    world.chain.submit(first)  # committed: its body is named, its bytes no longer count
    assert world.bodies.usage(me) == len(second_body)
    world.upload(third_body)
    assert world.bodies.usage(me) == len(second_body) + len(third_body)
    assert world.metric("medchain_uploads_stored_total") == 3


def test_uploading_the_same_body_again_is_counted_once(world: World) -> None:
    _, body = world.record(b"a", 1)
    world.upload(body)
    world.upload(body)
    assert world.bodies.usage(world.patient.address_text) == len(body)
    assert world.metric("medchain_bodies_unnamed") == 1
    assert world.metric("medchain_body_bytes_unnamed") == len(body)


def test_a_named_body_costs_no_quota(world: World) -> None:
    tx, body = world.record(b"a", 1)
    world.chain.submit_with_body(tx, body)
    world.upload(body)  # e.g. a client sending its upload again after the commit
    assert world.bodies.usage(world.patient.address_text) == 0


def test_a_refused_admission_releases_the_reservation(world: World) -> None:
    _, body = world.record(b"a", 1)

    async def refuse() -> None:
        raise OverQuota("stands in for any refusal of the transaction")

    with pytest.raises(OverQuota):
        asyncio.run(world.bodies.upload(world.patient.address_text, [body], refuse))
    assert world.bodies.usage(world.patient.address_text) == 0
    assert not world.chain.blobs.has(cid_for(body))


def test_whose_quota_an_upload_counts_against(world: World) -> None:
    tx, _ = world.record(b"a", 1)
    assert uploader_of(tx) == world.patient.address_text
    anonymous = dataclasses.replace(tx, sender=b"", nonce=0, method="anon.submit")
    assert uploader_of(anonymous) == ANONYMOUS


def test_a_failed_transaction_names_nothing(world: World) -> None:
    """A committed call that was refused (here: a version of a record that does not
    exist) leaves nothing in state that refers to its body."""
    sealed = seal(
        b"orphan", b"context", {world.patient.address: world.patient.encryption_public_key}
    )
    args = AddVersionArgs(
        b"\x01" * 16, cid_for(sealed.ciphertext), sealed.ciphertext_hash, sealed.wraps
    )
    tx = signed_tx(world.patient, world.chain.chain_id, 1, "records.add_version", args)
    world.upload(sealed.ciphertext)
    (receipt,) = world.chain.seal([tx]).receipts
    assert not receipt.ok
    assert not world.bodies.is_named(cid_for(sealed.ciphertext))
    assert world.bodies.usage(world.patient.address_text) == len(sealed.ciphertext)


# -- the collector --------------------------------------------------------------------


def test_an_unnamed_body_is_collected_after_the_grace_period(world: World) -> None:
    assert isinstance(world.chain.blobs, LocalBlobStore)  # files on disk
    _, body = world.record(b"never sent", 1)
    world.upload(body)
    world.clock.ms += HOUR_MS - 1
    assert world.bodies.collect() == (0, 0)  # not yet
    assert world.chain.blobs.has(cid_for(body))
    world.clock.ms += 2
    assert world.bodies.collect() == (1, len(body))
    assert not world.chain.blobs.has(cid_for(body))
    assert world.bodies.usage(world.patient.address_text) == 0
    assert world.metric("medchain_bodies_collected_total") == 1
    assert world.metric("medchain_body_bytes_collected_total") == len(body)
    assert world.bodies.collect() == (0, 0)


def test_uploading_again_restarts_the_grace_period(world: World) -> None:
    _, body = world.record(b"resent", 1)
    world.upload(body)
    world.clock.ms += HOUR_MS - 1_000
    world.upload(body)
    world.clock.ms += 2_000
    assert world.bodies.collect() == (0, 0)
    assert world.chain.blobs.has(cid_for(body))


def test_a_referenced_body_is_never_collected(world: World) -> None:
    tx, body = world.record(b"kept", 1)
    world.upload(body)
    world.chain.submit(tx)
    world.clock.ms += 100 * HOUR_MS
    assert world.bodies.collect() == (0, 0)
    assert world.chain.blobs.get(cid_for(body)) == body


def test_the_same_bytes_uploaded_again_under_a_transaction_that_never_commits(
    world: World,
) -> None:
    """The attack: a committed record's body, uploaded again by someone else under a
    transaction that never commits, then left for the collector."""
    tx, body = world.record(b"the patient's record", 1)
    world.chain.submit_with_body(tx, body)
    world.upload(body, uploader=AccountKeys.generate().address_text)
    world.clock.ms += 10 * HOUR_MS
    assert world.bodies.collect() == (0, 0)
    assert world.chain.blobs.get(cid_for(body)) == body


def test_a_body_named_between_selection_and_deletion_is_kept(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector re-checks each body under the ledger's lock: one a block named
    after the candidates were chosen is kept."""
    tx, body = world.record(b"late", 1)
    world.upload(body)
    world.clock.ms += 2 * HOUR_MS
    chosen = world.bodies.ledger.expired(world.clock() - HOUR_MS, 10)
    assert chosen == [cid_for(body)]
    world.chain.submit(tx)  # named now
    monkeypatch.setattr(world.bodies.ledger, "expired", lambda cutoff_ms, limit: chosen)
    assert world.bodies.collect() == (0, 0)
    assert world.chain.blobs.has(cid_for(body))


def test_bodies_fetched_from_peers_are_tracked_unless_named(world: World) -> None:
    tx, named = world.record(b"a record", 1)
    world.chain.submit_with_body(tx, named)
    stray = b"a body nobody names"
    for data in (named, stray):
        world.chain.blobs.put(data)
        world.bodies.kept_from_peer(cid_for(data), len(data))
    assert world.bodies.usage(FETCHED) == len(stray)
    world.clock.ms += 2 * HOUR_MS
    assert world.bodies.collect() == (1, len(stray))
    assert world.chain.blobs.has(cid_for(named)) and not world.chain.blobs.has(cid_for(stray))


def test_bodies_stored_before_the_ledger_are_never_collected(world: World) -> None:
    old = world.chain.blobs.put(b"stored by an earlier version")
    world.clock.ms += 100 * HOUR_MS
    assert world.bodies.collect() == (0, 0)
    assert world.chain.blobs.has(old)


def test_a_block_the_ledger_missed_is_scanned_before_any_collection(tmp_path: Path) -> None:
    """A crash between a block's commit and the ledger's update (here: a ledger that
    does not follow the chain): the restarted node catches up before it collects."""
    world = _world(tmp_path)
    tx, body = world.record(b"committed while nobody watched", 1)
    world.upload(body)
    world.chain.before_store = None  # the ledger misses the next block
    world.chain.submit(tx)
    world.bodies.close()
    restarted = _attach(world.chain, world.patient, tmp_path, 64 * 2**20, follow=False)
    restarted.clock.ms = world.clock.ms + 10 * HOUR_MS
    assert restarted.bodies.collect() == (0, 0)  # not caught up: it does not collect
    assert restarted.bodies.catch_up(world.chain.store) == 1
    assert restarted.bodies.is_named(cid_for(body))
    assert restarted.bodies.collect() == (0, 0)
    assert world.chain.blobs.get(cid_for(body)) == body
    assert restarted.bodies.catch_up(world.chain.store) == 0  # nothing new


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    world = _world(tmp_path)
    tx, body = world.record(b"named", 1)
    world.chain.submit_with_body(tx, body)
    _, unnamed = world.record(b"unnamed", 2)
    world.upload(unnamed)
    world.bodies.close()
    again = _attach(world.chain, world.patient, tmp_path, 64 * 2**20, follow=True)
    assert again.bodies.is_named(cid_for(body))
    assert again.bodies.usage(world.patient.address_text) == len(unnamed)


# -- a full disk ------------------------------------------------------------------------


def fill_ledger(bodies: Bodies) -> None:
    """Let the ledger's database grow no further, and fill its last pages, as on a
    full disk."""
    db = bodies.ledger._db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")
    for table in ("meta (key, value) VALUES (?, 0)", "named (cid) VALUES (?)"):
        with contextlib.suppress(sqlite3.OperationalError):
            for n in range(100_000):
                db.execute(f"INSERT INTO {table}", (f"filler-{n:06d}",))


def test_a_full_ledger_refuses_the_upload_and_stores_nothing(world: World) -> None:
    told: list[DiskFull] = []
    world.bodies.on_disk_full = told.append
    fill_ledger(world.bodies)
    bodies = [b"%05d" % i * 400 for i in range(50)]
    with pytest.raises(DiskFull) as caught:
        asyncio.run(world.bodies.upload(world.patient.address_text, bodies))
    assert told == [caught.value]
    assert caught.value.path == world.bodies.ledger.path.absolute()
    assert not any(world.chain.blobs.has(cid_for(body)) for body in bodies)
    assert world.bodies.usage(world.patient.address_text) == 0


def test_a_full_blob_store_refuses_the_upload(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[DiskFull] = []
    world.bodies.on_disk_full = told.append

    def full(blobs: object) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(world.chain.blobs, "put_many", full)
    with pytest.raises(DiskFull) as caught:
        world.upload(b"no room for me")
    assert told == [caught.value]
    assert isinstance(world.chain.blobs, LocalBlobStore)
    assert caught.value.path == world.chain.blobs.root.absolute()


def test_a_full_ledger_stops_the_block_from_being_stored(world: World) -> None:
    """Unlike other failures of the ledger (logged, the chain goes on), a full disk
    reaches the commit, which stores nothing: the chain store is on the same disk."""
    tx, _ = world.record(b"named", 1)
    height = world.chain.height
    fill_ledger(world.bodies)
    with pytest.raises(DiskFull):
        world.chain.submit(tx)
    assert world.chain.height == height
    assert world.chain.store.latest_height() == height
