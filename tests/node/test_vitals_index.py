"""Each node's index of the gateways' bundles, built from its blocks beside the state:
it answers as the in-state index did (tests/node/vitals_reference.py), is rebuilt from
the blocks when deleted or not of this store, reaches down as older blocks arrive on a
store that starts above genesis, and a failed write never stops the chain."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.app import (
    MAX_TIME_MS,
    MAX_VITALS_QUERY_DAYS,
    MS_PER_DAY,
    Batch,
    Bundle,
    CommitBatchArgs,
    DeviceKind,
    InvalidArgument,
    RegisterArgs,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    Role,
    committed_batch,
    registration_message,
)
from medchain.crypto import AccountKeys, sha256, signed_tx
from medchain.node import LocalChain
from medchain.node import _block_index as block_index_module
from medchain.node import _vitals_index as index_module
from medchain.node._vitals_index import VitalsIndex
from medchain.offchain import cid_for
from medchain.store import DiskFull, disk_full
from medchain.types import ChainParams, Genesis, GenesisValidator, Tx
from tests.api.harness import Org

from .vitals_reference import ReferenceVitals

CHAIN_ID = "medchain-vitals"
T0 = 19_844 * MS_PER_DAY
"""2024-05-01T00:00:00Z"""


HOSPITAL = Org.generate("vitals-hospital")
"""The founding hospital, whose admin registers the gateway."""


def _genesis(validator: AccountKeys) -> Genesis:
    return Genesis(
        CHAIN_ID,
        T0,
        ChainParams(),
        (),
        (GenesisValidator(validator.public_key, "v0", organisation=HOSPITAL.org_id),),
        organisations=(HOSPITAL.genesis(),),
    )


class Fleet:
    """A chain founded by a hospital, its gateway, and patients with two devices each."""

    def __init__(self, local: LocalChain, patients: int = 2) -> None:
        self.local = local
        self.nonces: dict[bytes, int] = {}
        self.hospital, self.gateway = HOSPITAL.admin, AccountKeys.generate()
        self.patients = [AccountKeys.generate() for _ in range(patients)]
        self.devices = {
            p.address: sorted((AccountKeys.generate() for _ in range(2)), key=lambda d: d.address)
            for p in self.patients
        }
        gateway = RegisterGatewayArgs(self.gateway.address, "edge")
        self.seal(
            self.tx(self.hospital, "devices.register_gateway", gateway),
            *(
                self.tx(
                    p, "registry.register", RegisterArgs(Role.PATIENT, "", p.encryption_public_key)
                )
                for p in self.patients
            ),
        )
        self.seal(*(self._register(p, d) for p in self.patients for d in self.devices[p.address]))
        self.reference = ReferenceVitals()
        self.committed = 0

    @classmethod
    def in_memory(cls, patients: int = 2) -> Fleet:
        validator = AccountKeys.generate()
        return cls(LocalChain.in_memory(_genesis(validator), validator), patients)

    def _register(self, patient: AccountKeys, device: AccountKeys) -> Tx:
        proof = device.sign(registration_message(CHAIN_ID, patient.address))
        args = RegisterDeviceArgs(device.public_key, patient.address, DeviceKind.ECG, b"", proof)
        return self.tx(patient, "devices.register", args)

    def tx(self, keys: AccountKeys, method: str, args: object) -> Tx:
        nonce = self.nonces.get(keys.address, self.local.account(keys.address).nonce)
        self.nonces[keys.address] = nonce + 1
        return signed_tx(keys, CHAIN_ID, nonce, method, args)

    def seal(self, *txs: Tx) -> None:
        sealed = self.local.seal(txs)
        assert all(r.ok for r in sealed.receipts), [r.message for r in sealed.receipts]

    def bundle(
        self,
        patient: int,
        time_from: int,
        time_to: int,
        count: int = 1,
        devices: tuple[int, ...] = (0,),
    ) -> Bundle:
        who = self.patients[patient]
        blob = who.address + time_from.to_bytes(8, "big") + time_to.to_bytes(8, "big")
        chosen = tuple(self.devices[who.address][i].address for i in sorted(set(devices)))
        return Bundle(who.address, cid_for(blob), sha256(blob), count, time_from, time_to, chosen)

    def commit(self, *bundles: Bundle) -> Batch:
        """Commit `bundles` (sorted here) in one batch; the batch as committed."""
        ordered = tuple(sorted(bundles, key=lambda b: (b.patient, b.day)))
        self.committed += 1
        root = sha256(b"batch root %d" % self.committed)
        args = CommitBatchArgs(root, sum(b.count for b in ordered), ordered)
        tx = self.tx(self.gateway, "devices.commit_batch", args)
        self.seal(tx)
        batch = committed_batch(tx, self.local.height)
        self.reference.add(batch)
        return batch

    def ids(self, from_ms: int, to_ms: int, device: AccountKeys | None = None) -> list[bytes]:
        address = None if device is None else device.address
        found = self.local.vitals(self.patients[0].address, from_ms, to_ms, address)
        return [e.batch_id for e in found]


# -- answers ------------------------------------------------------------------------


def test_vitals_of_a_range() -> None:
    fleet = Fleet.in_memory()
    a, b = fleet.devices[fleet.patients[0].address]
    late = T0 + MS_PER_DAY - 1_000  # 23:59:59 UTC
    next_day = T0 + MS_PER_DAY
    # committed out of time order: the query sorts by the first reading's time
    third = fleet.commit(fleet.bundle(0, next_day, next_day + 500, 2)).batch_id
    second = fleet.commit(fleet.bundle(0, late - 100, late, 3, (0, 1))).batch_id
    first = fleet.commit(fleet.bundle(0, T0 + 60_000, T0 + 60_000, 1, (1,))).batch_id
    assert fleet.ids(T0, next_day + MS_PER_DAY - 1) == [first, second, third]
    assert fleet.ids(late - 1_000, next_day + 1_000) == [second, third]  # across midnight
    assert fleet.ids(late, next_day) == [second, third]  # both edges included
    assert fleet.ids(late + 1, next_day - 1) == []  # between two bundles
    assert fleet.ids(next_day + 500, next_day + 500) == [third]
    assert fleet.ids(T0, T0 + 59_999) == [] and fleet.ids(T0 + 60_000, T0 + 60_000) == [first]
    assert fleet.ids(T0, next_day + MS_PER_DAY - 1, a) == [second, third]
    assert fleet.ids(T0, next_day + MS_PER_DAY - 1, b) == [first, second]
    assert fleet.ids(T0, next_day, AccountKeys.generate()) == []
    assert fleet.local.vitals(fleet.patients[1].address, T0, next_day) == []
    # same first time: commit order (height), then batch id
    fourth = fleet.commit(fleet.bundle(0, T0 + 60_000, T0 + 60_000, 1, (1,))).batch_id
    assert fleet.ids(T0, T0 + 60_000) == [first, fourth]


def test_vitals_query_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet.in_memory()
    year = MAX_VITALS_QUERY_DAYS * MS_PER_DAY
    assert fleet.ids(T0, T0 + year - 1) == []  # 366 days
    with pytest.raises(InvalidArgument, match="367 UTC days; one query covers at most 366"):
        fleet.ids(T0, T0 + year)
    with pytest.raises(InvalidArgument, match="give from <= to"):
        fleet.ids(T0 + 1, T0)
    with pytest.raises(InvalidArgument, match="milliseconds since the Unix epoch"):
        fleet.ids(-1, T0)
    with pytest.raises(InvalidArgument, match="milliseconds since the Unix epoch"):
        fleet.ids(T0, MAX_TIME_MS + 1)
    for hour in range(3):
        fleet.commit(fleet.bundle(0, T0 + hour * 3_600_000, T0 + hour * 3_600_000))
    monkeypatch.setattr(index_module, "MAX_VITALS_QUERY_SCAN", 2)
    with pytest.raises(InvalidArgument, match="3 vitals bundles in the days of this range"):
        fleet.ids(T0, T0 + 1)  # the day's entries count, not the range's
    monkeypatch.setattr(index_module, "MAX_VITALS_QUERY_SCAN", 3)
    monkeypatch.setattr(index_module, "MAX_VITALS_QUERY_ENTRIES", 2)
    assert len(fleet.ids(T0, T0 + 3_600_000)) == 2
    with pytest.raises(InvalidArgument, match="ask for a shorter one"):
        fleet.ids(T0, T0 + MS_PER_DAY - 1)


def test_a_batch_is_its_header_from_the_state_and_its_bundles_from_the_index() -> None:
    fleet = Fleet.in_memory()
    two = (fleet.bundle(0, T0, T0 + 9, 2, (0, 1)), fleet.bundle(1, T0 + 5, T0 + 5))
    batch = fleet.commit(*two)
    assert fleet.local.batch(batch.batch_id) == batch
    assert fleet.local.batch(b"\x00" * 16) is None
    assert fleet.local.vitals_complete_from() == 0


HOUR = 3_600_000
EDGE = st.sampled_from([0, 1, HOUR - 1])
"""Times on a coarse grid, a millisecond either side: bundles and ranges meet often."""
BUNDLE = st.tuples(
    st.integers(0, 2),  # patient
    st.integers(0, 3),  # day
    st.builds(lambda hour, edge: hour * HOUR + edge, st.integers(0, 23), EDGE),  # first
    st.sampled_from([0, 1, HOUR, 2 * HOUR]),  # span
    st.integers(1, 3),  # readings
    st.sets(st.integers(0, 1), min_size=1),  # devices
)
QUERY = st.tuples(
    st.builds(lambda hour, edge: hour * HOUR + edge, st.integers(0, 5 * 24), EDGE),
    st.builds(lambda hour, edge: hour * HOUR + edge, st.integers(0, 5 * 24), EDGE),
    st.sampled_from([None, 0, 1]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(BUNDLE, min_size=1, max_size=4), min_size=1, max_size=6),
    queries=st.lists(QUERY, min_size=1, max_size=8),
)
def test_the_index_answers_as_the_state_did(
    batches: list[list[tuple[int, int, int, int, int, set[int]]]],
    queries: list[tuple[int, int, int | None]],
) -> None:
    fleet = Fleet.in_memory(patients=3)
    for specs in batches:
        bundles: dict[tuple[int, int], Bundle] = {}
        for patient, day, start, span, count, devices in specs:
            first = T0 + day * MS_PER_DAY + start
            last = min(first + span, T0 + (day + 1) * MS_PER_DAY - 1)
            chosen = tuple(sorted(devices))[:count]
            bundles.setdefault((patient, day), fleet.bundle(patient, first, last, count, chosen))
        fleet.commit(*bundles.values())
    for keys in fleet.patients:
        for low, high, device in queries:
            from_ms, to_ms = T0 - HOUR + min(low, high), T0 - HOUR + max(low, high)
            address = None if device is None else fleet.devices[keys.address][device].address
            expected = fleet.reference.vitals_of(keys.address, from_ms, to_ms, address)
            assert fleet.local.vitals(keys.address, from_ms, to_ms, address) == expected


# -- built from the blocks ----------------------------------------------------------


def _fleet_on_disk(home: Path) -> Fleet:
    validator = AccountKeys.generate()
    return Fleet(LocalChain.create(home, _genesis(validator), validator))


def _remove_index(home: Path) -> None:
    for path in home.glob("chain-vitals.sqlite*"):
        path.unlink()


def test_the_index_is_rebuilt_from_the_blocks_when_deleted(tmp_path: Path) -> None:
    fleet = _fleet_on_disk(tmp_path)
    batches = [
        fleet.commit(fleet.bundle(0, T0 + i, T0 + i), fleet.bundle(1, T0, T0)) for i in range(3)
    ]
    patient = fleet.patients[0].address
    answered = fleet.local.vitals(patient, T0, T0 + MS_PER_DAY - 1)
    assert len(answered) == 3
    fleet.local.close()
    assert (tmp_path / "chain-vitals.sqlite").exists()
    _remove_index(tmp_path)
    reopened = LocalChain.open(tmp_path)
    assert reopened.vitals(patient, T0, T0 + MS_PER_DAY - 1) == answered
    assert [reopened.batch(b.batch_id) for b in batches] == batches
    reopened.close()


def test_an_index_of_other_blocks_is_rebuilt(tmp_path: Path) -> None:
    ours, theirs = _fleet_on_disk(tmp_path / "ours"), _fleet_on_disk(tmp_path / "theirs")
    mine = ours.commit(ours.bundle(0, T0, T0))
    other = theirs.commit(theirs.bundle(0, T0, T0))
    patient = ours.patients[0].address
    ours.local.close()
    theirs.local.vitals_index()
    theirs.local.close()
    _remove_index(tmp_path / "ours")
    shutil.copy(tmp_path / "theirs" / "chain-vitals.sqlite", tmp_path / "ours")
    reopened = LocalChain.open(tmp_path / "ours")
    assert [e.batch_id for e in reopened.vitals(patient, T0, T0)] == [mine.batch_id]
    assert reopened.batch(mine.batch_id) == mine and reopened.batch(other.batch_id) is None
    reopened.close()


def _drop_blocks_below(store_file: Path, height: int) -> list[tuple[str, list[tuple[object, ...]]]]:
    """Remove the blocks below `height` (with their receipts) as a node that joined
    from a snapshot lacks them; returns the rows, for a backfill to put back."""
    db = sqlite3.connect(store_file, isolation_level=None)
    try:
        saved = [
            ("blocks", db.execute("SELECT * FROM blocks WHERE height < ?", (height,)).fetchall()),
            ("txs", db.execute("SELECT * FROM txs WHERE height < ?", (height,)).fetchall()),
        ]
        db.execute("DELETE FROM txs WHERE height < ?", (height,))
        db.execute("DELETE FROM blocks WHERE height < ?", (height,))
    finally:
        db.close()
    return saved


def _put_back(store_file: Path, saved: list[tuple[str, list[tuple[object, ...]]]]) -> None:
    db = sqlite3.connect(store_file, isolation_level=None)
    try:
        for table, rows in saved:
            if rows:
                marks = ",".join("?" * len(rows[0]))
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    finally:
        db.close()


def test_a_store_above_genesis_lists_from_its_first_block_then_reaches_down(
    tmp_path: Path,
) -> None:
    fleet = _fleet_on_disk(tmp_path)
    early = fleet.commit(fleet.bundle(0, T0, T0))
    late = fleet.commit(fleet.bundle(0, T0 + 1, T0 + 1))
    patient = fleet.patients[0].address
    everything = fleet.local.vitals(patient, T0, T0 + 1)
    fleet.local.close()
    _remove_index(tmp_path)
    saved = _drop_blocks_below(tmp_path / "chain.sqlite", late.height)

    joined = LocalChain.open(tmp_path)
    assert joined.vitals_complete_from() == late.height
    assert [e.batch_id for e in joined.vitals(patient, T0, T0 + 1)] == [late.batch_id]
    header_only = joined.batch(early.batch_id)  # its header is in the committed state
    assert header_only is not None and header_only.root == early.root
    assert header_only.bundles == ()
    _put_back(tmp_path / "chain.sqlite", saved)  # the backfill stores the older blocks
    assert joined.vitals(patient, T0, T0 + 1) == everything
    assert joined.vitals_complete_from() == 0
    assert joined.batch(early.batch_id) == early
    joined.close()


def test_older_blocks_are_indexed_a_few_hundred_a_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet_on_disk(tmp_path)
    fleet.commit(fleet.bundle(0, T0, T0))
    top = fleet.local.height
    fleet.local.close()
    _remove_index(tmp_path)
    saved = _drop_blocks_below(tmp_path / "chain.sqlite", top)
    joined = LocalChain.open(tmp_path)
    assert joined.vitals_complete_from() == top
    _put_back(tmp_path / "chain.sqlite", saved)
    monkeypatch.setattr(block_index_module, "PAST_BLOCKS_PER_CALL", 2)
    assert joined.vitals_complete_from() == top - 2
    assert joined.vitals_complete_from() == max(top - 4, 0)
    joined.close()


@pytest.mark.parametrize(
    ("failure", "level"),
    [
        (sqlite3.OperationalError("disk I/O error"), logging.ERROR),
        # the node stops on the full disk and says so once, as its error
        (disk_full(Path("chain-vitals.sqlite"), "it"), logging.WARNING),
    ],
)
def test_a_failed_index_write_does_not_stop_the_chain(
    failure: Exception,
    level: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = Fleet.in_memory()
    fleet.local.vitals_index()

    def broken(*_: object) -> int:
        raise failure

    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
        patch.setattr(VitalsIndex, "_index", broken)
        batch = fleet.commit(fleet.bundle(0, T0, T0))
    assert fleet.local.store.latest_height() == batch.height
    (said,) = [r for r in caplog.records if "could not index the bundles" in r.getMessage()]
    assert f"of block {batch.height}" in said.getMessage() and said.levelno == level
    assert [e.batch_id for e in fleet.local.vitals(fleet.patients[0].address, T0, T0)] == [
        batch.batch_id
    ]


def test_a_full_disk_under_the_index_is_a_disk_full_and_the_index_catches_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = _fleet_on_disk(tmp_path)
    index = fleet.local.vitals_index()
    (pages,) = index._db.execute("PRAGMA page_count").fetchone()
    index._db.execute(f"PRAGMA max_page_count = {pages}")  # as a disk with no room left
    bundles = [fleet.bundle(0, T0 + i, T0 + i) for i in range(150)]  # pages' worth
    with caplog.at_level(logging.WARNING):
        batch = fleet.commit(*bundles[:1])  # the block is stored all the same
        for bundle in bundles[1:]:
            fleet.commit(bundle)
    assert "the disk holding" in caplog.text and "is full" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the node's to say
    with pytest.raises(DiskFull, match="the vitals index's update was not written"):
        fleet.local.vitals(fleet.patients[0].address, T0, T0 + 200)
    index._db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    found = fleet.local.vitals(fleet.patients[0].address, T0, T0 + 200)
    assert len(found) == 150 and found[0].batch_id == batch.batch_id
    fleet.local.close()
