"""IpfsBlobStore against a stand-in for Kubo's RPC API on 127.0.0.1.

The stand-in implements the endpoints the store uses, in the formats Kubo's RPC
reference documents: `add` (multipart upload, JSON-lines answer with Name/Hash/Size;
one chunk with raw leaves is named by its raw CID, more chunks by a dag-pb root; a
chunker over 1 MiB is refused), `cat`, `pin/add`, `pin/rm` and `block/rm`; errors
are a 500 with Kubo's {"Message", "Code", "Type": "error"} body. The real daemon
cannot be installed here."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from medchain.offchain import (
    IPFS_CHUNKER,
    BlobCorrupted,
    BlobNotFound,
    BlobTooLarge,
    CollectableBlobStore,
    InvalidCid,
    IpfsBlobStore,
    IpfsError,
    IpfsUnavailable,
    cid_for,
)

MAX_CHUNK = 1024 * 1024  # Kubo's chunker limit before boxo raised it


def _dag_pb_cid(data: bytes) -> str:
    """A CIDv1 dag-pb name for a multi-chunk file (not the real UnixFS root: any
    dag-pb CID other than the raw one shows the store's index at work)."""
    raw = bytes([0x01, 0x70, 0x12, 0x20]) + hashlib.sha256(b"unixfs" + data).digest()
    return "b" + base64.b32encode(raw).decode().rstrip("=").lower()


class FakeKubo:
    """What the stand-in holds and was asked, for the tests to read and change."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.pins: set[str] = set()
        self.calls: list[tuple[str, dict[str, list[str]]]] = []
        self.lie_root: str | None = None
        """When set, `add` answers this Hash whatever was uploaded."""

    def count(self, command: str) -> int:
        return sum(1 for name, _ in self.calls if name == command)


def _handler(kubo: FakeKubo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._send(405, b"405 - Method Not Allowed", "text/plain")

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            command = url.path.removeprefix("/api/v0/")
            kubo.calls.append((command, query))
            if command == "add":
                self._add(query, body)
            elif command == "cat":
                self._cat(query.get("arg", [""])[0])
            elif command == "pin/add":
                self._pin(query.get("arg", [""])[0])
            elif command == "pin/rm":
                self._unpin(query.get("arg", [""])[0])
            elif command == "block/rm":
                self._remove(query.get("arg", [""])[0])
            else:
                self._send(404, b"404 page not found", "text/plain")

        def _add(self, query: dict[str, list[str]], body: bytes) -> None:
            chunker = query.get("chunker", ["size-262144"])[0]
            size = int(chunker.removeprefix("size-"))
            if size > MAX_CHUNK:
                message = f"chunker parameters may not exceed the maximum chunk size of {MAX_CHUNK}"
                self._error(message)
                return
            options = {k: v[0] for k, v in query.items()}
            if options.get("cid-version") != "1" or options.get("raw-leaves") != "true":
                self._error("this stand-in only does cid-version=1 with raw leaves")
                return
            headers = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(headers + body)
            parts = list(form.iter_parts())
            assert len(parts) == 1 and parts[0].get_param("name", header="content-disposition")
            data = parts[0].get_payload(decode=True) or b""
            assert isinstance(data, bytes)
            root = cid_for(data) if len(data) <= size else _dag_pb_cid(data)
            root = kubo.lie_root or root
            kubo.content[root] = data
            if options.get("pin", "true") == "true":
                kubo.pins.add(root)
            line = {"Name": "blob", "Hash": root, "Size": str(len(data) + 11)}
            self._send(200, json.dumps(line).encode() + b"\n", "application/json")

        def _cat(self, root: str) -> None:
            if root not in kubo.content:
                self._error(f"block was not found locally (offline): ipld: could not find {root}")
                return
            self._send(200, kubo.content[root], "text/plain")

        def _pin(self, root: str) -> None:
            if root not in kubo.content:
                self._error(f"pin: block was not found locally (offline): {root}")
                return
            kubo.pins.add(root)
            self._send(200, json.dumps({"Pins": [root]}).encode(), "application/json")

        def _unpin(self, root: str) -> None:
            if root not in kubo.pins:
                self._error("not pinned or pinned indirectly")
                return
            kubo.pins.discard(root)
            self._send(200, json.dumps({"Pins": [root]}).encode(), "application/json")

        def _remove(self, root: str) -> None:
            if root in kubo.pins:
                self._error(f"{root}: pinned: recursive")
                return
            kubo.content.pop(root, None)
            self._send(200, json.dumps({"Hash": root}).encode(), "application/json")

        def _error(self, message: str) -> None:
            body = json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()
            self._send(500, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def kubo() -> Iterator[tuple[FakeKubo, str]]:
    state = FakeKubo()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def store(kubo: tuple[FakeKubo, str], tmp_path: Path) -> Iterator[IpfsBlobStore]:
    opened = IpfsBlobStore(kubo[1], tmp_path / "ipfs-index.sqlite", max_blob_bytes=4 * MAX_CHUNK)
    yield opened
    opened.close()


def test_it_is_a_blob_store(store: IpfsBlobStore) -> None:
    assert isinstance(store, CollectableBlobStore)


def test_delete_forgets_the_cid_at_once_and_unpins_it(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, _ = kubo
    big = bytes(range(256)) * (MAX_CHUNK // 256) + b"more"
    cids = [store.put(b"small"), store.put(big)]
    roots = [store.ipfs_cid(cid) for cid in cids]
    assert None not in roots
    for cid in cids:
        assert store.delete(cid) is True
        assert not store.has(cid) and store.ipfs_cid(cid) is None
        with pytest.raises(BlobNotFound):
            store.get(cid)
    store.close()  # waits for the background unpins
    assert not fake.pins.intersection(roots)
    assert fake.count("pin/rm") == 2


def test_erase_also_removes_the_block_from_the_ipfs_node(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, _ = kubo
    kept, erased = store.put(b"kept"), store.put(b"an erased record's ciphertext")
    assert store.erase(erased) is True
    assert not store.has(erased)
    store.close()  # waits for the background unpin and removal
    assert erased not in fake.pins and erased not in fake.content
    assert kept in fake.pins and kept in fake.content
    assert fake.count("block/rm") == 1


def test_deleting_an_unknown_cid_asks_nothing(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    assert store.delete(cid_for(b"never stored")) is False
    assert kubo[0].count("pin/rm") == 0


def test_a_failed_unpin_is_logged_and_storing_again_pins_again(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, _ = kubo
    cid = store.put(b"twice")
    fake.pins.clear()  # someone unpinned it by hand: pin/rm will fail
    assert store.delete(cid)
    assert store.put(b"twice") == cid  # waits for the unpin, then adds it again
    assert cid in fake.pins and store.get(cid) == b"twice"
    store.close()
    assert "could not unpin" in caplog.text


def test_a_small_blob_is_added_pinned_and_named_by_our_cid(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, _ = kubo
    cid = store.put(b"sealed record")
    assert cid == cid_for(b"sealed record")
    assert store.ipfs_cid(cid) == cid and cid in fake.pins  # one raw block: the same CID
    assert store.has(cid) and store.get(cid) == b"sealed record"
    (add,) = [q for name, q in fake.calls if name == "add"]
    assert {k: v[0] for k, v in add.items()}.items() >= {
        "cid-version": "1",
        "raw-leaves": "true",
        "hash": "sha2-256",
        "pin": "true",
        "chunker": IPFS_CHUNKER,
    }.items()


def test_a_blob_over_one_chunk_is_found_through_the_index(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str], tmp_path: Path
) -> None:
    fake, url = kubo
    data = bytes(range(256)) * (MAX_CHUNK // 256) + b"one more chunk"
    cid = store.put(data)
    root = store.ipfs_cid(cid)
    assert root is not None and root != cid and root.startswith("bafybei")  # dag-pb root
    assert store.get(cid) == data
    assert fake.calls[-1] == ("cat", {"arg": [root]})
    reopened = IpfsBlobStore(url, tmp_path / "ipfs-index.sqlite")  # the index is on disk
    try:
        assert reopened.get(cid) == data
    finally:
        reopened.close()


def test_storing_known_bytes_again_pins_instead_of_uploading(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, _ = kubo
    cid = store.put(b"twice")
    fake.pins.clear()
    assert store.put(b"twice") == cid
    assert fake.count("add") == 1 and fake.count("pin/add") == 1 and cid in fake.pins
    del fake.content[cid]  # collected by IPFS meanwhile: pinning fails, so add it again
    assert store.put(b"twice") == cid
    assert fake.count("add") == 2 and store.get(cid) == b"twice"


def test_what_ipfs_returns_is_checked_against_our_cid(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, url = kubo
    cid = store.put(b"the real bytes")
    fake.content[cid] = b"the fake bytes"
    with pytest.raises(BlobCorrupted, match=f"{cid}.*{url}.*does not match its CID"):
        store.get(cid)
    fake.content[cid] = b"the real"  # a read cut short
    with pytest.raises(BlobCorrupted):
        store.get(cid)
    fake.content[cid] = b"x" * (4 * MAX_CHUNK + 1)  # more than any blob holds
    with pytest.raises(BlobCorrupted, match="more than"):
        store.get(cid)


def test_an_add_named_by_another_raw_cid_is_refused(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, _ = kubo
    fake.lie_root = cid_for(b"something else")
    with pytest.raises(IpfsError, match="expected"):
        store.put(b"mine")
    assert not store.has(cid_for(b"mine"))


def test_missing_blobs(store: IpfsBlobStore, kubo: tuple[FakeKubo, str]) -> None:
    fake, url = kubo
    never = cid_for(b"never stored")
    with pytest.raises(BlobNotFound, match="not in the index"):
        store.get(never)
    assert not store.has(never) and fake.calls == []  # the index answers, not IPFS
    cid = store.put(b"collected later")
    del fake.content[cid]
    with pytest.raises(BlobNotFound, match=f"IPFS node at {url} could not return"):
        store.get(cid)
    with pytest.raises(InvalidCid):
        store.get("QmNotOurs")


def test_limits(store: IpfsBlobStore, kubo: tuple[FakeKubo, str]) -> None:
    with pytest.raises(BlobTooLarge):
        store.put(b"x" * (4 * MAX_CHUNK + 1))
    assert kubo[0].calls == []
    with pytest.raises(ValueError, match="http"):
        IpfsBlobStore("127.0.0.1:5001", Path("unused"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_ipfs_node_is_named_with_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    store = IpfsBlobStore(url, tmp_path / "index.sqlite", timeout_s=2)
    try:
        with pytest.raises(IpfsUnavailable, match=rf"{url}.*ipfs daemon.*offchain.ipfs_api"):
            store.put(b"anything")
    finally:
        store.close()


def test_a_server_that_is_not_kubo_is_reported(kubo: tuple[FakeKubo, str], tmp_path: Path) -> None:
    _, url = kubo
    store = IpfsBlobStore(url + "/not-the-api", tmp_path / "index.sqlite")
    try:
        with pytest.raises(IpfsUnavailable, match=r"HTTP 404.*not look like a Kubo RPC API"):
            store.put(b"anything")
    finally:
        store.close()


def test_put_many_adds_each_new_blob_once_and_pins_known_ones(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    fake, _ = kubo
    known = store.put(b"known")
    big = b"y" * (MAX_CHUNK + 1)  # named through the index
    blobs = [b"a", b"known", big, b"a", b""]
    assert store.put_many(blobs) == [cid_for(b) for b in blobs]
    assert fake.count("add") == 1 + 3 and fake.count("pin/add") == 1 and known in fake.pins
    assert [store.get(cid_for(b)) for b in blobs] == blobs


def test_put_many_checks_every_size_before_calling_ipfs(
    store: IpfsBlobStore, kubo: tuple[FakeKubo, str]
) -> None:
    with pytest.raises(BlobTooLarge, match="blob 1 of the batch"):
        store.put_many([b"fits", b"x" * (4 * MAX_CHUNK + 1)])
    assert kubo[0].calls == []


def test_concurrent_puts_from_threads(store: IpfsBlobStore) -> None:
    blobs = [f"blob {i}".encode() for i in range(16)]
    results: list[str] = []
    threads = [threading.Thread(target=lambda b=b: results.append(store.put(b))) for b in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(cid_for(b) for b in blobs)
    assert all(store.get(cid_for(b)) == b for b in blobs)
