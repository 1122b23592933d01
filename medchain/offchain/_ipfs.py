"""IpfsBlobStore: blobs kept by an IPFS node (Kubo) through its HTTP RPC API.

Why an index: medchain names a blob by its raw CID (the SHA-256 of the whole body),
but `ipfs add` cuts a file into chunks and names a multi-chunk file by the root of a
dag-pb DAG. Kubo caps the chunker at 1 MiB (boxo raised it to 2 MiB - 256 in 2026),
far below our 16 MiB blob limit, so no chunker setting makes every root equal our CID;
and a single raw block over 2 MiB (`block/put --allow-big-block`) could not travel
over bitswap. So blobs are added as ordinary files with 1 MiB chunks (every Kubo
accepts that size): up to 1 MiB the root IPFS returns *is* our CID, above it the store
remembers our CID -> IPFS root in a small SQLite index beside the node's data.

The IPFS node is not trusted: every read is re-hashed against our CID, so a damaged,
swapped or truncated answer is BlobCorrupted, never a record that will not decrypt.
The index is authoritative for `has` and `get`: a CID stored elsewhere is not looked
up in the IPFS network (that could stall for minutes); the node asks its peers.

`delete` (a node's collector, for bodies no committed transaction names) forgets the
CID at once and unpins it in the background; the IPFS node's own garbage collection
(`ipfs repo gc`, or a daemon started with `--enable-gc`) then frees its blocks.
`erase` (an erased record's ciphertext) also removes the root block once unpinned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from multiformats import CID

from medchain.offchain._store import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobCorrupted,
    BlobNotFound,
    _check_limit,
    _check_size,
    _check_sizes,
)
from medchain.types import MedchainError, cid_for, parse_cid

IPFS_CHUNKER = "size-1048576"
"""1 MiB chunks: the largest size every Kubo accepts (its limit before 2026)."""
IPFS_INDEX_FILE = "ipfs-index.sqlite"
"""Where a node keeps the index beside its data (HOME/ipfs-index.sqlite)."""
_ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "pin": "true",
    "chunker": IPFS_CHUNKER,
    "progress": "false",
}
_MAX_ERROR_BYTES = 4096

log = logging.getLogger("medchain.offchain")


class IpfsUnavailable(MedchainError):
    """The IPFS node's RPC API cannot be reached (down, wrong address, too slow)."""

    code = "ipfs_unavailable"


class IpfsError(MedchainError):
    """The IPFS node answered, but not with what was asked for."""

    code = "ipfs_error"


class IpfsBlobStore:
    """A BlobStore over the Kubo RPC API at `api_url` (e.g. http://127.0.0.1:5001).

    Uses `add` (pinned), `cat`, `pin/add` and `pin/rm` only. Thread-safe: one httpx
    client (which may be shared between threads) and one SQLite connection behind a lock.
    """

    def __init__(
        self,
        api_url: str,
        index_path: Path,
        *,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        timeout_s: float = 30.0,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(f"the IPFS RPC API is an http(s) URL, got {api_url!r}")
        self.api_url = api_url.rstrip("/")
        self.index_path = Path(index_path)
        self.max_blob_bytes = _check_limit(max_blob_bytes)
        self.timeout_s = timeout_s
        self._client = httpx.Client(timeout=timeout_s)
        self._lock = threading.Lock()
        self._unpinning: set[str] = set()
        """CIDs deleted whose pin is being removed: storing one again waits for that."""
        self._unpinned = threading.Condition(self._lock)
        self._unpinner: ThreadPoolExecutor | None = None
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.index_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS blobs "
            "(cid TEXT PRIMARY KEY, ipfs_cid TEXT NOT NULL, size INTEGER NOT NULL)"
        )

    def __repr__(self) -> str:
        return f"IpfsBlobStore(api_url={self.api_url!r}, index={str(self.index_path)!r})"

    def close(self) -> None:
        with self._lock:
            unpinner, self._unpinner = self._unpinner, None
        if unpinner is not None:
            unpinner.shutdown(wait=True)  # unpins queued by delete still reach IPFS
        self._client.close()
        with self._lock:
            self._db.close()

    # -- BlobStore --------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        _check_size(data, self.max_blob_bytes)
        cid = cid_for(data)
        with self._lock:
            while cid in self._unpinning:  # else its unpin could undo this put's pin
                self._unpinned.wait()
        root = self.ipfs_cid(cid)
        if root is not None:
            with contextlib.suppress(IpfsError):
                self._call("pin/add", {"arg": root})
                return cid  # still there: pinning it again costs no upload
        root = self._add(cid, data)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO blobs (cid, ipfs_cid, size) VALUES (?, ?, ?)",
                (cid, root, len(data)),
            )
        return cid

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        """`put` of each blob in turn (each one `add` or `pin/add`), sizes checked first;
        a blob given twice is sent once."""
        _check_sizes(blobs, self.max_blob_bytes)
        stored: dict[bytes, str] = {}
        for data in blobs:
            if data not in stored:
                stored[data] = self.put(data)
        return [stored[data] for data in blobs]

    def get(self, cid: str) -> bytes:
        digest = parse_cid(cid)
        root = self.ipfs_cid(cid)
        if root is None:
            raise BlobNotFound(
                f"blob {cid} was not stored through the IPFS node at {self.api_url} "
                f"(it is not in the index {self.index_path}); fetch it from a node that "
                "has it, or check the CID in the record"
            )
        data = self._cat(cid, root)
        if hashlib.sha256(data).digest() != digest:
            raise BlobCorrupted(
                f"blob {cid} read from the IPFS node at {self.api_url} (as {root}) does not "
                "match its CID (the IPFS copy was altered, or the read was cut short); "
                "fetch it again from another node, or put the original bytes again"
            )
        return data

    def has(self, cid: str) -> bool:
        parse_cid(cid)
        return self.ipfs_cid(cid) is not None

    def delete(self, cid: str) -> bool:
        """Forget `cid` now and unpin it in the background (see the module's note)."""
        return self._forget(cid, remove=False)

    def erase(self, cid: str) -> bool:
        """`delete` for an erased record's ciphertext: once unpinned, its root block is
        also removed from the IPFS node's repo (`block/rm`) instead of waiting for a
        garbage collection (the chunks of a blob over 1 MiB go with the next one)."""
        return self._forget(cid, remove=True)

    def _forget(self, cid: str, *, remove: bool) -> bool:
        parse_cid(cid)
        with self._lock:
            row = self._db.execute("SELECT ipfs_cid FROM blobs WHERE cid = ?", (cid,)).fetchone()
            if row is None:
                return False
            self._db.execute("DELETE FROM blobs WHERE cid = ?", (cid,))
            self._unpinning.add(cid)
            if self._unpinner is None:
                self._unpinner = ThreadPoolExecutor(1, thread_name_prefix="medchain-ipfs-unpin")
            unpinner = self._unpinner
        unpinner.submit(self._unpin, cid, str(row[0]), remove)
        return True

    def _unpin(self, cid: str, root: str, remove: bool) -> None:
        try:
            self._call("pin/rm", {"arg": root})
            if remove:
                self._call("block/rm", {"arg": root})
        except MedchainError as exc:  # not pinned any more, or the IPFS node is down
            log.warning("could not unpin deleted blob %s (%s): %s", cid, root, exc.message)
        finally:
            with self._lock:
                self._unpinning.discard(cid)
                self._unpinned.notify_all()

    def ipfs_cid(self, cid: str) -> str | None:
        """The CID IPFS knows the blob by (our CID up to 1 MiB), None if not stored here."""
        with self._lock:
            row = self._db.execute("SELECT ipfs_cid FROM blobs WHERE cid = ?", (cid,)).fetchone()
        return None if row is None else str(row[0])

    # -- the RPC calls ----------------------------------------------------------------

    def _add(self, cid: str, data: bytes) -> str:
        files = {"file": ("blob", data, "application/octet-stream")}
        body = self._call("add", _ADD_PARAMS, files=files)
        root: object = None
        for line in body.decode("utf-8", "replace").splitlines():
            if line.strip():
                entry = _json(line, self.api_url)
                root = entry.get("Hash", root)
        if not isinstance(root, str):
            raise IpfsError(
                f"the IPFS node at {self.api_url} answered `add` without a Hash; "
                "is offchain.ipfs_api the address of a Kubo RPC API?"
            )
        return self._check_root(cid, root, len(data))

    def _check_root(self, cid: str, root: str, size: int) -> str:
        """Refuse a root that cannot be our blob: a raw root must be our CID exactly."""
        try:
            decoded = CID.decode(root)
        except Exception:  # multiformats raises a zoo of error types for bad text
            raise IpfsError(
                f"the IPFS node at {self.api_url} named the blob {root!r}, which is not a CID"
            ) from None
        codec = decoded.codec.name
        if (
            decoded.version != 1
            or codec not in ("raw", "dag-pb")
            or (codec == "raw") != (root == cid)
        ):
            raise IpfsError(
                f"the IPFS node at {self.api_url} added the {size}-byte blob {cid} as {root} "
                f"(CIDv{decoded.version}, {codec}); expected {cid} itself or a CIDv1 dag-pb "
                "root: check that it honours cid-version=1, raw-leaves and sha2-256"
            )
        return root

    def _cat(self, cid: str, root: str) -> bytes:
        url = f"{self.api_url}/api/v0/cat"
        limit = self.max_blob_bytes
        try:
            with self._client.stream("POST", url, params={"arg": root}) as response:
                if response.status_code != 200:
                    message = _error_text(response)
                    if response.status_code == 500:
                        raise BlobNotFound(
                            f"the IPFS node at {self.api_url} could not return blob {cid} "
                            f"(as {root}): {message}; it may have been unpinned and "
                            "collected: put it again, or fetch it from a node that has it"
                        )
                    raise _http_error(self.api_url, "cat", response.status_code, message)
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise BlobCorrupted(
                            f"the IPFS node at {self.api_url} returned more than {limit:,} "
                            f"bytes for blob {cid} (as {root}), more than a blob holds; "
                            "fetch it again from another node"
                        )
                return bytes(data)
        except httpx.HTTPError as exc:
            raise _unavailable(self.api_url, exc) from None

    def _call(
        self, command: str, params: dict[str, str], files: dict[str, Any] | None = None
    ) -> bytes:
        """POST /api/v0/<command>: the body on 200; IpfsError (500) or IpfsUnavailable."""
        try:
            response = self._client.post(
                f"{self.api_url}/api/v0/{command}", params=params, files=files
            )
        except httpx.HTTPError as exc:
            raise _unavailable(self.api_url, exc) from None
        if response.status_code != 200:
            raise _http_error(self.api_url, command, response.status_code, _error_text(response))
        return response.content


def _json(line: str, api_url: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        raise IpfsError(f"the IPFS node at {api_url} answered `add` with {line[:200]!r}")
    if entry.get("Type") == "error":
        raise IpfsError(f"the IPFS node at {api_url} refused `add`: {entry.get('Message')}")
    return entry


def _error_text(response: httpx.Response) -> str:
    """Kubo's error message ({"Message": ..., "Type": "error"}) or the start of the body."""
    raw = response.read()[:_MAX_ERROR_BYTES].decode("utf-8", "replace")
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(raw)["Message"])
    return raw.strip() or f"HTTP {response.status_code}"


def _http_error(api_url: str, command: str, status: int, message: str) -> MedchainError:
    if status == 500:
        return IpfsError(f"the IPFS node at {api_url} refused `{command}`: {message}")
    return IpfsUnavailable(
        f"{api_url} answered POST /api/v0/{command} with HTTP {status} ({message}); "
        "it does not look like a Kubo RPC API: check offchain.ipfs_api in config.json"
    )


def _unavailable(api_url: str, exc: httpx.HTTPError) -> IpfsUnavailable:
    if isinstance(exc, httpx.TimeoutException):
        what = "did not answer in time"
    else:
        what = f"cannot be reached ({type(exc).__name__}: {exc})"
    return IpfsUnavailable(
        f"the IPFS node's RPC API at {api_url} {what}; start it (`ipfs daemon`), "
        "or correct offchain.ipfs_api in the node's config.json"
    )
