from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import MS_PER_DAY
from medchain.crypto import AccountKeys
from medchain.gateway import (
    Batch,
    BatchEntry,
    BatchError,
    PatientBundle,
    Reading,
    SignedReading,
    prove,
    reading_id,
    sign_reading,
    verify_proof,
)
from medchain.types import decode

KEYS = AccountKeys(bytes(range(32)), bytes(range(32, 64)))


def entries(count: int, patients: int = 3) -> list[BatchEntry]:
    return [
        BatchEntry(f"p{i % patients}", sign_reading(KEYS, i, 1000 + i, b'{"n":%d}' % i))
        for i in range(count)
    ]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5), st.randoms(use_true_random=False))
def test_every_reading_proves_and_wrong_roots_or_readings_do_not(
    count: int, patients: int, rng: object
) -> None:
    items = entries(count, patients)
    shuffled = list(items)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    batch = Batch(items)
    assert Batch(shuffled).root == batch.root  # order of arrival does not matter
    other = Batch(entries(count + 1, patients))
    all_at_once = batch.proofs()
    for entry in items:
        rid = entry.reading.reading_id
        proof = prove(batch, rid)
        assert all_at_once[rid] == proof
        assert verify_proof(proof, batch.root)
        assert not verify_proof(proof, other.root)
        changed = Reading(KEYS.public_key, entry.reading.reading.sequence + 1000, 0, b"{}")
        assert not verify_proof(
            dataclasses.replace(proof, reading_id=reading_id(changed)), batch.root
        )
        if count > 1:
            assert not verify_proof(
                dataclasses.replace(proof, index=(proof.index + 1) % count), batch.root
            )


def test_bundles_group_per_patient_in_a_deterministic_order() -> None:
    items = entries(10, 3)
    batch = Batch(reversed(items))
    assert len(batch) == 10 and [b.patient for b in batch.bundles] == ["p0", "p1", "p2"]
    assert sum(len(b.readings) for b in batch.bundles) == 10
    for bundle in batch.bundles:
        ids = [r.reading_id for r in bundle.readings]
        assert ids == sorted(ids)
        assert decode(PatientBundle, bundle.encoded) == bundle
    assert [b.encoded for b in Batch(items).bundles] == [b.encoded for b in batch.bundles]
    assert list(batch.reading_ids) == sorted(batch.reading_ids)


def test_bundles_split_at_midnight_utc() -> None:
    """One bundle per patient and UTC day of the readings' signed time, sorted by
    patient then day; each knows its time range and devices."""
    other = AccountKeys(bytes(range(1, 33)), bytes(range(33, 65)))
    midnight = 19_845 * MS_PER_DAY
    times = [midnight - 2, midnight - 1, midnight, midnight + 5, midnight + MS_PER_DAY]
    items = [
        BatchEntry("p1", sign_reading(KEYS, i, t, b'{"n":%d}' % i)) for i, t in enumerate(times)
    ]
    items += [
        BatchEntry("p1", sign_reading(other, 0, midnight + 7, b"{}")),
        BatchEntry("p0", sign_reading(other, 1, midnight - 1, b"{}")),
    ]
    batch = Batch(reversed(items))
    assert [(b.patient, b.day) for b in batch.bundles] == [
        ("p0", 19_844),
        ("p1", 19_844),
        ("p1", 19_845),
        ("p1", 19_846),
    ]
    assert [len(b.readings) for b in batch.bundles] == [1, 2, 3, 1]
    day = batch.bundles[2]
    assert (day.time_from_ms, day.time_to_ms) == (midnight, midnight + 7)
    assert day.devices == tuple(sorted([KEYS.address, other.address]))
    assert batch.bundles[1].devices == (KEYS.address,)
    assert (batch.bundles[1].time_from_ms, batch.bundles[1].time_to_ms) == (
        midnight - 2,
        midnight - 1,
    )
    assert [decode(PatientBundle, b.encoded) for b in batch.bundles] == list(batch.bundles)
    assert [b.encoded for b in Batch(items).bundles] == [b.encoded for b in batch.bundles]


def test_duplicates_and_unknown_readings_are_refused() -> None:
    items = entries(3)
    with pytest.raises(BatchError, match="twice"):
        Batch([*items, items[0]])
    batch = Batch(items)
    assert items[0].reading.reading_id in batch
    with pytest.raises(BatchError, match="not in this batch"):
        batch.prove(b"\x00" * 32)


def test_a_resigned_reading_has_the_same_id() -> None:
    s = entries(1)[0].reading
    assert SignedReading(s.reading, bytes(64)).reading_id == s.reading_id


def test_verify_proof_never_raises_on_garbage() -> None:
    batch = Batch(entries(5))
    proof = batch.prove(batch.reading_ids[2])
    for bad in (
        dataclasses.replace(proof, path=(b"x",)),
        dataclasses.replace(proof, path=proof.path[:-1]),
        dataclasses.replace(proof, tree_size=4),
        dataclasses.replace(proof, index=-1),
        dataclasses.replace(proof, reading_id=b"short"),
        dataclasses.replace(proof, root=bytes(32)),
        "not a proof",
    ):
        assert not verify_proof(bad, batch.root)  # type: ignore[arg-type]
