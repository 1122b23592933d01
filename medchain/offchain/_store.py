"""Blob stores: where encrypted record bodies live, named by their CID.

Stores never delete on their own: the chain may refer to any blob stored. A node's
collector (node/_bodies.py) deletes, through `CollectableBlobStore.delete`, only bodies
no committed transaction names. Every read re-hashes the bytes, so a flipped bit on
disk (or a lying peer, for remote stores) surfaces as BlobCorrupted instead of as a
record that will not decrypt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from medchain._fs import fsync_directory
from medchain.types import CID_PREFIX_TEXT, MedchainError, cid_for, parse_cid

DEFAULT_MAX_BLOB_BYTES = 16 * 1024 * 1024


class BlobNotFound(MedchainError):
    code = "blob_not_found"


class BlobCorrupted(MedchainError):
    code = "blob_corrupted"


class BlobTooLarge(MedchainError):
    code = "blob_too_large"


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed, append-only storage of blobs."""

    def put(self, data: bytes) -> str:
        """Store `data` and return its CID; storing the same bytes again is a no-op."""
        ...

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        """Store each blob as `put` does and return their CIDs, in order. Every size is
        checked before anything is stored (BlobTooLarge names the first one over), so
        a refused batch stores nothing; a store may write the blobs together."""
        ...

    def get(self, cid: str) -> bytes:
        """The bytes named by `cid`: BlobNotFound, BlobCorrupted or InvalidCid otherwise."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the store holds `cid` (without checking its bytes)."""
        ...


@runtime_checkable
class CollectableBlobStore(BlobStore, Protocol):
    """A blob store a node's collector may delete from."""

    def delete(self, cid: str) -> bool:
        """Forget the blob named by `cid` (False if it was not stored): `has` is False
        once this returns. Quick, because a node calls it while commits wait."""
        ...


def _check_size(data: bytes, limit: int) -> None:
    if not isinstance(data, bytes):
        raise TypeError(f"a blob is bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise BlobTooLarge(
            f"the blob is {len(data):,} bytes, over this store's limit of {limit:,} bytes; "
            "store large attachments in parts, or raise max_blob_bytes on the store"
        )


def _check_sizes(blobs: Sequence[bytes], limit: int) -> None:
    """`_check_size` of each blob, the first one over named by its index."""
    for index, data in enumerate(blobs):
        try:
            _check_size(data, limit)
        except BlobTooLarge as exc:
            raise BlobTooLarge(f"blob {index} of the batch: {exc.message}") from None
        except TypeError as exc:
            raise TypeError(f"blob {index} of the batch: {exc}") from None


def _check_limit(limit: int) -> int:
    if type(limit) is not int or limit < 1:
        raise ValueError(f"max_blob_bytes must be a positive int, got {limit!r}")
    return limit


def _verified(cid: str, digest: bytes, data: bytes, where: str) -> bytes:
    if hashlib.sha256(data).digest() != digest:
        raise BlobCorrupted(
            f"blob {cid} in {where} does not match its CID (the stored bytes were altered "
            "or damaged); fetch it again from another node, or put the original bytes again"
        )
    return data


class LocalBlobStore:
    """Blobs as files under `root`, one file per CID.

    Files fan out into directories named by two characters of the CID. Every CID
    starts with the same 'bafkrei' plus one character that is mostly fixed, so the
    two characters after those (pure digest bits, 1,024 directories) are used.
    Writes go to a temporary file that is renamed into place, so a crash never
    leaves a half-written blob under a CID.
    """

    _FAN_OUT = slice(len(CID_PREFIX_TEXT) + 1, len(CID_PREFIX_TEXT) + 3)

    def __init__(self, root: Path, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self.root = Path(root)
        self.max_blob_bytes = _check_limit(max_blob_bytes)
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore(root={str(self.root)!r}, max_blob_bytes={self.max_blob_bytes})"

    def path_for(self, cid: str) -> Path:
        """Where the blob named by `cid` lives (InvalidCid for a malformed CID)."""
        parse_cid(cid)  # also keeps arbitrary text out of file paths
        return self.root / cid[self._FAN_OUT] / cid

    def put(self, data: bytes) -> str:
        _check_size(data, self.max_blob_bytes)
        cid = cid_for(data)
        path = self.path_for(cid)
        if not self._holds(path, data):
            self._write(path, data)
            fsync_directory(path.parent)
        return cid

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        """As `put` for each blob, but every directory written to is synced once for
        the batch instead of once per blob. Each blob still lands whole (a temporary
        file renamed into place); the batch is not atomic: after a crash some blobs may
        be stored and others not, and putting the batch again completes it."""
        _check_sizes(blobs, self.max_blob_bytes)
        cids = [cid_for(data) for data in blobs]
        directories: set[Path] = set()
        for cid, data in dict(zip(cids, blobs, strict=True)).items():
            path = self.path_for(cid)
            if not self._holds(path, data):
                self._write(path, data)
                directories.add(path.parent)
        for directory in sorted(directories):
            fsync_directory(directory)
        return cids

    @staticmethod
    def _holds(path: Path, data: bytes) -> bool:
        return path.is_file() and path.read_bytes() == data

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        """Absent, or damaged on disk: (re)write it; the CID guarantees the content.
        The file is synced; its directory is the caller's to sync."""
        path.parent.mkdir(exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def get(self, cid: str) -> bytes:
        digest = parse_cid(cid)
        path = self.path_for(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(
                f"blob {cid} is not in the local store at {self.root}; fetch it from a node "
                "that has it, or check the CID in the record"
            ) from None
        return _verified(cid, digest, data, str(path))

    def get_small(self, cid: str, limit: int) -> bytes | None:
        """As `get`, for a blob of at most `limit` bytes; None for a larger one, left
        for the caller to read off its event loop."""
        digest = parse_cid(cid)
        path = self.path_for(cid)
        try:
            with path.open("rb") as file:
                if os.fstat(file.fileno()).st_size > limit:
                    return None
                data = file.read()
        except FileNotFoundError:
            return self.get(cid)  # its error says what to do
        return _verified(cid, digest, data, str(path))

    def has(self, cid: str) -> bool:
        return self.path_for(cid).is_file()

    def delete(self, cid: str) -> bool:
        """Remove the blob's file (its directory synced, so it stays removed)."""
        path = self.path_for(cid)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_directory(path.parent)
        return True


class MemoryBlobStore:
    """An in-memory BlobStore for tests and the simulator; same checks as on disk."""

    def __init__(self, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self.max_blob_bytes = _check_limit(max_blob_bytes)
        self._blobs: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryBlobStore({len(self._blobs)} blobs)"

    def __len__(self) -> int:
        return len(self._blobs)

    def put(self, data: bytes) -> str:
        _check_size(data, self.max_blob_bytes)
        cid = cid_for(data)
        self._blobs[cid] = data
        return cid

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        _check_sizes(blobs, self.max_blob_bytes)
        cids = [cid_for(data) for data in blobs]
        self._blobs.update(zip(cids, blobs, strict=True))
        return cids

    def get(self, cid: str) -> bytes:
        digest = parse_cid(cid)
        try:
            data = self._blobs[cid]
        except KeyError:
            raise BlobNotFound(
                f"blob {cid} is not in this store; it was never stored here, "
                "so check the CID in the record"
            ) from None
        return _verified(cid, digest, data, "memory")

    def has(self, cid: str) -> bool:
        parse_cid(cid)
        return cid in self._blobs

    def delete(self, cid: str) -> bool:
        parse_cid(cid)
        return self._blobs.pop(cid, None) is not None
