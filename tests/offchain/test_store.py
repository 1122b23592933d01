from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from medchain.offchain import (
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    CollectableBlobStore,
    InvalidCid,
    LocalBlobStore,
    MemoryBlobStore,
    cid_for,
)

HELLO_CID = "bafkreide5semuafsnds3ugrvm6fbwuyw2ijpj43gwjdxemstjkfozi37hq"


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs", max_blob_bytes=1024)
    return MemoryBlobStore(max_blob_bytes=1024)


def test_both_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(LocalBlobStore(tmp_path), CollectableBlobStore)
    assert isinstance(MemoryBlobStore(), CollectableBlobStore)


def test_delete_forgets_a_blob_and_only_that_one(store: BlobStore) -> None:
    assert isinstance(store, CollectableBlobStore)
    kept, gone = store.put(b"kept"), store.put(b"gone")
    assert store.delete(gone) is True
    assert not store.has(gone) and store.has(kept) and store.get(kept) == b"kept"
    with pytest.raises(BlobNotFound):
        store.get(gone)
    assert store.delete(gone) is False  # not stored (any more)
    with pytest.raises(InvalidCid):
        store.delete("../../etc/passwd")
    assert store.put(b"gone") == gone and store.get(gone) == b"gone"  # stored again


def test_delete_removes_the_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    cid = store.put(b"on disk")
    path = store.path_for(cid)
    assert path.is_file() and store.delete(cid) and not path.exists()


def test_put_returns_the_cid_and_get_returns_the_bytes(store: BlobStore) -> None:
    assert not store.has(HELLO_CID)
    assert store.put(b"Hello world") == HELLO_CID
    assert store.has(HELLO_CID)
    assert store.get(HELLO_CID) == b"Hello world"


def test_round_trip_of_many_blobs(store: BlobStore) -> None:
    blobs = [os.urandom(n) for n in (0, 1, 31, 32, 33, 500, 1024)]
    cids = [store.put(b) for b in blobs]
    assert cids == [cid_for(b) for b in blobs]
    for cid, blob in zip(cids, blobs, strict=True):
        assert store.get(cid) == blob


def test_put_is_idempotent(store: BlobStore) -> None:
    assert store.put(b"same") == store.put(b"same")
    assert store.get(cid_for(b"same")) == b"same"


def test_put_many_returns_the_cids_in_order(store: BlobStore) -> None:
    store.put(b"stored before")
    blobs = [b"b", b"stored before", b"a", b"b", b"", os.urandom(1024)]
    assert store.put_many(blobs) == [cid_for(b) for b in blobs]
    for blob in blobs:
        assert store.get(cid_for(blob)) == blob
    assert store.put_many([]) == []
    assert store.put_many(blobs) == [cid_for(b) for b in blobs]  # again: a no-op


def test_put_many_checks_every_size_before_storing_any(store: BlobStore) -> None:
    blobs = [b"fits", bytes(1025), b"fits too"]
    with pytest.raises(BlobTooLarge, match="blob 1 of the batch: the blob is 1,025 bytes"):
        store.put_many(blobs)
    assert not any(store.has(cid_for(b)) for b in (b"fits", b"fits too"))
    with pytest.raises(TypeError, match="blob 1 of the batch"):
        store.put_many([b"fits", "text"])  # type: ignore[list-item]
    assert not store.has(cid_for(b"fits"))


def test_unknown_cid_is_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match=HELLO_CID) as caught:
        store.get(HELLO_CID)
    assert caught.value.code == "blob_not_found"


def test_oversized_blob_is_refused(store: BlobStore) -> None:
    store.put(bytes(1024))  # exactly at the limit is fine
    with pytest.raises(BlobTooLarge, match="1,025 bytes, over this store's limit of 1,024") as c:
        store.put(bytes(1025))
    assert c.value.code == "blob_too_large"
    assert not store.has(cid_for(bytes(1025)))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hello",
        "../../etc/passwd",
        "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u",
        HELLO_CID.upper(),
    ],
)
def test_bad_cids_are_refused(store: BlobStore, bad: str) -> None:
    store.put(b"Hello world")
    with pytest.raises(InvalidCid):
        store.get(bad)
    with pytest.raises(InvalidCid):
        store.has(bad)


def test_non_bytes_blob_is_a_type_error(store: BlobStore) -> None:
    with pytest.raises(TypeError):
        store.put("Hello world")  # type: ignore[arg-type]


def test_limit_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_blob_bytes"):
        LocalBlobStore(tmp_path, max_blob_bytes=0)
    with pytest.raises(ValueError, match="max_blob_bytes"):
        MemoryBlobStore(max_blob_bytes=-1)


# --- on disk ------------------------------------------------------------------------


def test_layout_fans_out_by_digest_characters(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    cid = store.put(b"Hello world")
    path = store.path_for(cid)
    assert path == tmp_path / cid[8:10] / cid
    assert path.read_bytes() == b"Hello world"
    # No temporary files are left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == [cid]


def test_blobs_survive_a_new_store_instance(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path).put(b"persisted")
    assert LocalBlobStore(tmp_path).get(cid_for(b"persisted")) == b"persisted"


def test_tampered_file_is_detected(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    cid = store.put(b"blood type O+")
    path = store.path_for(cid)
    path.write_bytes(b"blood type A+")
    with pytest.raises(BlobCorrupted, match=str(path)) as caught:
        store.get(cid)
    assert caught.value.code == "blob_corrupted"
    assert store.has(cid)  # present, just damaged


def test_truncated_file_is_detected(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    cid = store.put(b"0123456789")
    store.path_for(cid).write_bytes(b"")
    with pytest.raises(BlobCorrupted):
        store.get(cid)


def test_put_repairs_a_damaged_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    cid = store.put(b"blood type O+")
    store.path_for(cid).write_bytes(b"garbage")
    assert store.put(b"blood type O+") == cid
    assert store.get(cid) == b"blood type O+"


def test_blob_files_are_private(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    cid = store.put(b"private")
    mode = stat.S_IMODE(store.path_for(cid).stat().st_mode)
    assert mode & 0o077 == 0


def test_failed_write_leaves_no_blob_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path)

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"never lands")
    monkeypatch.undo()
    cid = cid_for(b"never lands")
    assert not store.has(cid)
    assert list(store.path_for(cid).parent.iterdir()) == []


def test_put_many_syncs_each_directory_once_and_repairs_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path)
    damaged = store.put(b"blood type O+")
    store.path_for(damaged).write_bytes(b"garbage")
    kept = store.put(b"kept")
    synced: list[Path] = []
    monkeypatch.setattr("medchain.offchain._store.fsync_directory", synced.append)
    blobs = [f"reading {i}".encode() for i in range(40)] + [b"blood type O+", b"kept"]
    cids = store.put_many(blobs)
    assert store.get(damaged) == b"blood type O+"  # rewritten, as put does
    directories = {store.path_for(cid).parent for cid in cids if cid != kept}
    assert sorted(synced) == sorted(directories)  # once each; none for the intact blob
    for cid, blob in zip(cids, blobs, strict=True):
        assert store.get(cid) == blob
        assert not any(p.name.startswith(".tmp-") for p in store.path_for(cid).parent.iterdir())


def test_put_many_survives_a_new_store_instance(tmp_path: Path) -> None:
    cids = LocalBlobStore(tmp_path).put_many([b"one", b"two"])
    reopened = LocalBlobStore(tmp_path)
    assert [reopened.get(cid) for cid in cids] == [b"one", b"two"]


def test_memory_store_detects_tampering() -> None:
    store = MemoryBlobStore()
    cid = store.put(b"heart rate 72")
    store._blobs[cid] = b"heart rate 27"
    with pytest.raises(BlobCorrupted):
        store.get(cid)
    assert len(store) == 1


def test_get_small_reads_a_small_blob_and_leaves_a_large_one(tmp_path: Path) -> None:
    """The node reads small blobs on its event loop and larger ones in a worker thread:
    get_small answers the bytes (checked) up to the limit, None above it."""
    store = LocalBlobStore(tmp_path / "blobs")
    small, large = store.put(b"a" * 100), store.put(b"b" * 5000)
    assert store.get_small(small, 4096) == b"a" * 100
    assert store.get_small(large, 4096) is None
    assert store.get_small(large, 5000) == b"b" * 5000
    with pytest.raises(BlobNotFound):
        store.get_small(HELLO_CID, 4096)
    store.path_for(small).write_bytes(b"flipped bits")
    with pytest.raises(BlobCorrupted):
        store.get_small(small, 4096)
