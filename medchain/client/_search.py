"""Encrypted keyword search, the client's half: index records under keywords, search,
delete, and hand a reader the keys to search chosen keywords.

Keywords never leave the client in clear: the chain gets pseudorandom labels and
encrypted values (`crypto/_sse.py`), a node gets label keys, a reader gets a
capability sealed to its X25519 key.

The client keeps, per keyword, its current epoch, the entries written in it, the total,
and whether the epoch's label key was shown to anyone. That state lives in a small
encrypted file next to the key file (`alice.key.search`), keyed by secret keyword
ids, so even the opened file lists no keywords. If it is lost, nothing is: the
client asks for its anchor entry to learn whether it ever indexed anything, then
rebuilds each keyword on first use by probing the node epoch by epoch until a miss.
A probe shows the missing epoch's label key, so the client writes a dummy entry
there at once: epochs stay gap-free and later entries go to an epoch nobody saw.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medchain._fs import fsync_directory
from medchain.app import MAX_INDEX_ENTRIES, IndexArgs, IndexEntry, LabelTaken
from medchain.client._envelope import open_sealed, seal
from medchain.crypto import (
    AccountKeys,
    DecryptionFailed,
    EntryKind,
    InvalidKeyword,
    SearchToken,
    anchor_keys,
    decrypt_values,
    dummy_id,
    encrypt_value,
    entry_labels,
    epoch_keys,
    format_address,
    keyword_id,
    make_entry,
    normalize_keyword,
    padded_count,
    parse_value,
    search_key,
)
from medchain.types import DecodeError, MedchainError, Receipt, decode, encode


class SearchedChain(Protocol):
    """The chain as the search sees it: its id, and the index lookup."""

    @property
    def chain_id(self) -> str: ...

    def search(self, owner: bytes, token: SearchToken) -> list[list[bytes]]: ...


class SearchingAccount(Protocol):
    """What the search needs of an account (a MedchainClient is one): its keys and
    chain, sending its index updates, and opening the records it finds. Naming only
    this keeps the search independent of the client that carries it."""

    @property
    def keys(self) -> AccountKeys: ...

    @property
    def address(self) -> bytes: ...

    @property
    def chain(self) -> SearchedChain: ...

    def send(self, method: str, args: object) -> Receipt: ...

    def read_record(self, record_id: bytes) -> dict[str, Any]: ...

SEARCH_STATE_SUFFIX = ".search"
CAPABILITY_MAGIC = b"medchain-search-capability/v1\n"
_STATE_MAGIC = b"medchain-search-state/v1\n"
_NONCE_SIZE = 12


class SearchStateError(MedchainError):
    """The client's search state file cannot be read or written."""

    code = "bad_search_state"


class InvalidCapability(MedchainError):
    """Bytes that are not a search capability for this account."""

    code = "invalid_capability"


class NoSearchCapability(MedchainError):
    """Searching an index this account holds no keys for."""

    code = "not_authorised"


class IndexWriteFailed(MedchainError):
    """The chain refused a `search.index` transaction (the code is the chain's)."""


class RecordNotIndexed(MedchainError):
    """The record was stored but indexing it failed; `record_id` says which."""

    code = "not_indexed"

    def __init__(self, record_id: bytes, cause: MedchainError) -> None:
        super().__init__(
            f"record {record_id.hex()} is on chain but was not indexed ({cause.code}: "
            f"{cause.message}); index it again with `medchain record index {record_id.hex()} "
            "--keyword …`"
        )
        self.record_id = record_id


# -- state ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeywordState:
    keyword_id: bytes
    epoch: int
    counter: int
    """Entries written in `epoch` so far."""
    total: int
    """Entries over all epochs, dummies included: the size a search result shows."""
    real: int
    """Entries that are not dummies (additions and tombstones): what padding rounds up."""
    revealed: bool
    """The epoch's label key was shown (search, grant or probe): the next entry opens a
    new epoch, so nobody holding that key can link it."""
    pending: bool = False
    """A write was interrupted: the chain may hold entries this state does not count.
    The keyword is probed before its next use."""


def _fresh(kid: bytes) -> KeywordState:
    return KeywordState(kid, 0, 0, 0, 0, False)


@dataclass(frozen=True, slots=True)
class _StateDocument:
    owner: bytes
    complete: bool
    """Every keyword the account ever indexed is listed (false after a rebuild)."""
    anchored: bool
    """The account's anchor entry is on chain."""
    keywords: tuple[KeywordState, ...]
    """Sorted by keyword id."""


def search_state_path(key_file: Path) -> Path:
    """Where the search state of the account in `key_file` lives: next to it."""
    return key_file.with_name(key_file.name + SEARCH_STATE_SUFFIX)


def _state_key(key: bytes) -> bytes:
    return hmac.digest(key, b"medchain/search-state-file/v1", "sha256")


def _read_state(path: Path, key: bytes, owner: bytes) -> _StateDocument | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SearchStateError(
            f"cannot read the search state {path} ({exc.strerror or exc}); check that you "
            "may read it"
        ) from None
    unreadable = SearchStateError(
        f"{path} cannot be opened with this key: it belongs to another account or is "
        "damaged. Move it away; the search state is then rebuilt from the chain"
    )
    if not raw.startswith(_STATE_MAGIC):
        raise unreadable
    body = raw[len(_STATE_MAGIC) :]
    try:
        plain = AESGCM(_state_key(key)).decrypt(
            body[:_NONCE_SIZE], body[_NONCE_SIZE:], _STATE_MAGIC + owner
        )
        document = decode(_StateDocument, plain)
    except (InvalidTag, DecodeError, ValueError):
        raise unreadable from None
    if document.owner != owner:
        raise unreadable
    return document


def _write_state(path: Path, key: bytes, document: _StateDocument) -> None:
    nonce = os.urandom(_NONCE_SIZE)
    sealed = AESGCM(_state_key(key)).encrypt(nonce, encode(document), _STATE_MAGIC + document.owner)
    data = _STATE_MAGIC + nonce + sealed
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise SearchStateError(
            f"cannot write the search state {path} ({exc.strerror or exc}); check that the "
            "directory exists and that you may write to it"
        ) from None
    try:
        with os.fdopen(fd, "wb") as tmp:  # mkstemp: mode 0600
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        raise SearchStateError(
            f"cannot write the search state {path} ({exc.strerror or exc}); check free space"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    fsync_directory(path.parent)


# -- pure parts (also used by the benchmark) --------------------------------------------


def keywords_in(words: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated, in first-seen order."""
    seen: dict[str, None] = {}
    for word in words:
        seen.setdefault(normalize_keyword(word), None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class IndexUpdate:
    """One record added to (or, as a tombstone, removed from) the index under keywords."""

    entry_id: bytes
    keywords: tuple[str, ...]
    """Normalised (see `keywords_in`)."""
    kind: EntryKind = EntryKind.ADD


def plan_entries(
    key: bytes,
    states: Mapping[bytes, KeywordState],
    updates: Sequence[IndexUpdate],
    pad: bool = False,
) -> tuple[list[IndexEntry], dict[bytes, KeywordState]]:
    """The entries that carry `updates`, grouped by keyword, and the keyword states once
    they are on chain. A keyword whose epoch was revealed moves to a new epoch first.
    With `pad`, dummies raise each keyword's total to `padded_count` of its real entries
    (the total only ever grows, so padding hides counts among entries written together)."""
    per_word: dict[str, list[tuple[EntryKind, bytes]]] = {}
    for update in updates:
        for word in update.keywords:
            per_word.setdefault(word, []).append((update.kind, update.entry_id))
    entries: list[IndexEntry] = []
    after: dict[bytes, KeywordState] = {}
    for word, items in per_word.items():
        kid = keyword_id(key, word)
        state = states.get(kid) or _fresh(kid)
        if state.revealed:
            state = replace(state, epoch=state.epoch + 1, counter=0, revealed=False)
        real, total = state.real + len(items), state.total + len(items)
        if pad:
            items = items + [(EntryKind.DUMMY, dummy_id())] * max(0, padded_count(real) - total)
        keys = epoch_keys(key, word, state.epoch)
        labels = entry_labels(keys.label_key, state.counter)
        for n, ((kind, entry_id), label) in enumerate(zip(items, labels, strict=False)):
            ident = dummy_id() if kind is EntryKind.DUMMY else entry_id
            value = encrypt_value(keys.value_key, state.counter + n, kind, ident)
            entries.append(IndexEntry(label, value))
        after[kid] = replace(
            state,
            counter=state.counter + len(items),
            total=state.total + len(items),
            real=real,
        )
    return entries, after


def open_results(value_keys: Sequence[bytes], found: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Record ids from a lookup's per-epoch values: entries are replayed in order, a
    tombstone removes an id (a later ADD brings it back), dummies are dropped."""
    if len(found) != len(value_keys):
        raise DecryptionFailed(
            "the node answered a different number of epochs than asked; query another node"
        )
    ids: dict[bytes, None] = {}  # a dict keeps first-insertion order on re-assignment
    add, tombstone, dummy = int(EntryKind.ADD), int(EntryKind.TOMBSTONE), int(EntryKind.DUMMY)
    for value_key, values in zip(value_keys, found, strict=True):
        for plain in decrypt_values(value_key, values):
            kind = plain[0]
            if kind == add:
                ids[plain[1:]] = None
            elif kind == tombstone:
                ids.pop(plain[1:], None)
            elif kind != dummy:
                parse_value(plain)  # raises: not a value this client wrote
    return list(ids)


# -- results and capabilities -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenedRecord:
    record_id: bytes
    resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    record_id: bytes
    reason: str
    """Why it could not be opened (the error's message)."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    record_ids: tuple[bytes, ...]
    """Matching records, in the order they were indexed."""
    opened: tuple[OpenedRecord, ...] = ()
    """With decrypt: the records the caller could open."""
    skipped: tuple[SkippedRecord, ...] = ()
    """With decrypt: the others, with the reason."""


@dataclass(frozen=True, slots=True)
class GrantedKeyword:
    keyword: str
    """Normalised; only ever inside the sealed capability."""
    label_keys: tuple[bytes, ...] = field(repr=False)
    value_keys: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class SearchCapability:
    """An opened capability: search `owner`'s index for these keywords, over the entries
    that existed when it was granted."""

    chain_id: str
    owner: bytes
    reader: bytes
    keywords: tuple[GrantedKeyword, ...]


@dataclass(frozen=True, slots=True)
class _SealedCapability:
    owner: bytes
    reader: bytes
    wrapped_key: bytes
    ciphertext: bytes


def capability_context(owner: bytes, reader: bytes) -> bytes:
    return b"medchain/search-capability/v1\x00" + owner + reader


# -- the client's search index ------------------------------------------------------------


class SearchIndex:
    """One account's encrypted index: what `MedchainClient`'s search methods run on."""

    def __init__(self, client: SearchingAccount, state_path: Path | None = None) -> None:
        self._client = client
        self._path = state_path
        self._key: bytes | None = None
        self._document: _StateDocument | None = None
        self._states: dict[bytes, KeywordState] = {}

    # -- state --------------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = search_key(self._client.keys)
        return self._key

    @property
    def _owner(self) -> bytes:
        return self._client.address

    def _load(self) -> _StateDocument:
        if self._document is not None:
            return self._document
        document = None if self._path is None else _read_state(self._path, self.key, self._owner)
        if document is None:
            # No state: an anchor on chain means there was one, so rebuild keyword by keyword.
            (anchor,) = self._lookup((anchor_keys(self.key).label_key,))
            document = _StateDocument(self._owner, not anchor, bool(anchor), ())
        self._document = document
        self._states = {s.keyword_id: s for s in document.keywords}
        return document

    def _save(self, complete: bool | None = None, anchored: bool | None = None) -> None:
        document = self._load()
        document = _StateDocument(
            document.owner,
            document.complete if complete is None else complete,
            document.anchored if anchored is None else anchored,
            tuple(self._states[k] for k in sorted(self._states)),
        )
        self._document = document
        if self._path is not None:
            _write_state(self._path, self.key, document)

    def _lookup(self, label_keys: tuple[bytes, ...]) -> list[list[bytes]]:
        return self._client.chain.search(self._owner, SearchToken(label_keys))

    def _resolve(self, word: str) -> tuple[KeywordState | None, list[list[bytes]] | None]:
        """The keyword's state (None: never indexed), probing the chain when the state may
        be out of date; a probe also returns the values it found, epoch by epoch."""
        document = self._load()
        state = self._states.get(keyword_id(self.key, word))
        if state is not None and not state.pending:
            return state, None
        if state is None and document.complete:
            return None, None
        return self._probe(word)

    def _probe(self, word: str) -> tuple[KeywordState, list[list[bytes]]]:
        """Rebuild a keyword's state from the chain: ask for epoch 0, 1, … until one is
        empty. That epoch's label key is now shown, so a dummy entry goes there at once
        (epochs stay gap-free) and the next entry opens a fresh epoch."""
        found: list[list[bytes]] = []
        while True:
            (values,) = self._lookup((epoch_keys(self.key, word, len(found)).label_key,))
            if not values:
                break
            found.append(values)
        kid = keyword_id(self.key, word)
        epoch, total = len(found), sum(len(v) for v in found)
        real = sum(
            parse_value(plain)[0] is not EntryKind.DUMMY
            for e, values in enumerate(found)
            for plain in decrypt_values(epoch_keys(self.key, word, e).value_key, values)
        )
        self._states[kid] = KeywordState(kid, epoch, 0, total, real, True, pending=True)
        self._save()
        marker = make_entry(epoch_keys(self.key, word, epoch), 0, EntryKind.DUMMY, dummy_id())
        self._submit([IndexEntry(*marker)], [])
        state = KeywordState(kid, epoch, 1, total + 1, real, True)
        self._states[kid] = state
        self._save(anchored=True)
        return state, found

    # -- writing ------------------------------------------------------------------------

    def _submit(self, entries: list[IndexEntry], receipts: list[Receipt]) -> None:
        """Send entries in transactions of at most MAX_INDEX_ENTRIES, each sorted by label
        (so its order says nothing); the account's anchor rides with its first entries.
        Appends each committed transaction's receipt to `receipts`."""
        if not self._load().anchored:
            anchor_label_key = anchor_keys(self.key).label_key
            if self._lookup((anchor_label_key,))[0]:  # written, but not recorded here
                self._save(complete=False, anchored=True)
            else:
                anchor = make_entry(anchor_keys(self.key), 0, EntryKind.DUMMY, dummy_id())
                entries = [IndexEntry(*anchor), *entries]
        for start in range(0, len(entries), MAX_INDEX_ENTRIES):
            chunk = sorted(entries[start : start + MAX_INDEX_ENTRIES], key=lambda e: e.label)
            receipt = self._client.send("search.index", IndexArgs(tuple(chunk)))
            if not receipt.ok:
                failed = IndexWriteFailed(receipt.message)
                failed.code = receipt.code
                raise failed
            receipts.append(receipt)
            if not self._load().anchored:  # the anchor went with the first transaction
                self._save(anchored=True)

    def write(self, updates: Sequence[IndexUpdate], pad: bool = False) -> list[Receipt]:
        """Write the entries of `updates`. If the chain already holds labels this state
        thinks are free (a stale state), the keywords are probed and it tries once more."""
        if not any(u.keywords for u in updates):
            return []
        for attempt in (1, 2):
            try:
                return self._write_once(updates, pad)
            except MedchainError as exc:
                if exc.code != LabelTaken.code or attempt == 2:
                    raise
                self._save(complete=False, anchored=True)  # another writer: trust nothing
        raise AssertionError("unreachable")

    def _write_once(self, updates: Sequence[IndexUpdate], pad: bool) -> list[Receipt]:
        before: dict[bytes, KeywordState] = {}
        for word in keywords_in(w for u in updates for w in u.keywords):
            state, _ = self._resolve(word)
            if state is not None:
                before[state.keyword_id] = state
        entries, after = plan_entries(self.key, before, updates, pad)
        # Write-ahead: if this stops half-way, the keywords are probed before their next use.
        for kid in after:
            self._states[kid] = replace(before.get(kid) or _fresh(kid), pending=True)
        self._save()
        receipts: list[Receipt] = []
        try:
            self._submit(entries, receipts)
        except MedchainError as exc:
            if not receipts and exc.code != LabelTaken.code:  # nothing written: undo
                for kid in after:
                    if kid in before:
                        self._states[kid] = before[kid]
                    else:
                        del self._states[kid]
                self._save()
            raise
        self._states.update(after)
        self._save(anchored=True)
        return receipts

    # -- searching ----------------------------------------------------------------------

    def search(self, keyword: str) -> list[bytes]:
        """Record ids indexed under `keyword` in this account's own index."""
        word = normalize_keyword(keyword)
        state, probed = self._resolve(word)
        if state is None:
            return []  # never indexed: nothing to ask a node
        keys = [epoch_keys(self.key, word, e) for e in range(state.epoch + 1)]
        if probed is not None:  # the probe already fetched every epoch but the marker's
            return open_results([k.value_key for k in keys[: len(probed)]], probed)
        # Shown from now on: record it before the token leaves, so a crash cannot undo it.
        self._states[state.keyword_id] = replace(state, revealed=True)
        self._save()
        found = self._lookup(tuple(k.label_key for k in keys))
        return open_results([k.value_key for k in keys], found)

    # -- capabilities -------------------------------------------------------------------

    def grant(self, reader: bytes, reader_public: bytes, keywords: Iterable[str]) -> bytes:
        """A capability for `reader` over the current entries of `keywords`, sealed to its
        X25519 key. Entries added later go to epochs the capability does not hold."""
        words = keywords_in(keywords)
        if not words:
            raise InvalidKeyword("name at least one keyword to grant")
        granted = []
        for word in words:
            state, _ = self._resolve(word)
            if state is None:  # nothing indexed yet: nothing to grant
                granted.append(GrantedKeyword(word, (), ()))
                continue
            self._states[state.keyword_id] = replace(state, revealed=True)
            keys = [epoch_keys(self.key, word, e) for e in range(state.epoch + 1)]
            granted.append(
                GrantedKeyword(
                    word, tuple(k.label_key for k in keys), tuple(k.value_key for k in keys)
                )
            )
        self._save()
        body = SearchCapability(self._client.chain.chain_id, self._owner, reader, tuple(granted))
        context = capability_context(self._owner, reader)
        sealed = seal(encode(body), context, {reader: reader_public})
        return CAPABILITY_MAGIC + encode(
            _SealedCapability(self._owner, reader, sealed.wraps[0].wrapped_key, sealed.ciphertext)
        )


def open_capability(client: SearchingAccount, data: bytes) -> SearchCapability:
    """Open a capability granted to this client's account; InvalidCapability otherwise."""
    not_one = InvalidCapability(
        "this is not a medchain search capability (made by `medchain record search-grant`); "
        "check the file"
    )
    if not data.startswith(CAPABILITY_MAGIC):
        raise not_one
    try:
        outer = decode(_SealedCapability, data[len(CAPABILITY_MAGIC) :])
    except DecodeError:
        raise not_one from None
    if outer.reader != client.address:
        raise InvalidCapability(
            f"this capability was granted to {format_address(outer.reader)}, not to "
            f"{format_address(client.address)}; only its reader can open it"
        )
    context = capability_context(outer.owner, outer.reader)
    try:
        plain = open_sealed(client.keys, outer.wrapped_key, outer.ciphertext, context)
        body = decode(SearchCapability, plain)
    except (DecryptionFailed, DecodeError):
        raise InvalidCapability(
            "this capability does not open with your key: it was altered or was not sealed "
            "to you; ask the owner to grant it again"
        ) from None
    if (body.owner, body.reader) != (outer.owner, outer.reader):
        raise not_one
    if body.chain_id != client.chain.chain_id:
        raise InvalidCapability(
            f"this capability is for chain {body.chain_id!r}, not {client.chain.chain_id!r}"
        )
    return body


def search_with(
    client: SearchingAccount, capability: SearchCapability, keyword: str
) -> list[bytes]:
    """Record ids under `keyword` in the capability owner's index (no state, no writes)."""
    word = normalize_keyword(keyword)
    granted = next((g for g in capability.keywords if g.keyword == word), None)
    if granted is None:
        raise NoSearchCapability(
            f"this capability from {format_address(capability.owner)} does not cover that "
            "keyword; ask the owner to grant it (`medchain record search-grant`)"
        )
    if not granted.label_keys:
        return []
    found = client.chain.search(capability.owner, SearchToken(granted.label_keys))
    return open_results(granted.value_keys, found)


def open_records(client: SearchingAccount, record_ids: Sequence[bytes]) -> SearchResult:
    """Decrypt what the caller may read; the rest is skipped with the reason."""
    opened, skipped = [], []
    for record_id in record_ids:
        try:
            opened.append(OpenedRecord(record_id, client.read_record(record_id)))
        except MedchainError as exc:
            skipped.append(SkippedRecord(record_id, exc.message))
    return SearchResult(tuple(record_ids), tuple(opened), tuple(skipped))


# -- keywords from FHIR -----------------------------------------------------------------

_SKIPPED_ELEMENTS = frozenset(
    {"meta", "text", "identifier", "name", "telecom", "address", "note", "subject", "patient"}
)


def keywords_of(resource: Mapping[str, Any]) -> list[str]:
    """Keywords a FHIR resource can be found by: its resourceType, and the code and
    display of every Coding in it (LOINC, SNOMED CT, ICD, category and status codes),
    nested resources included. Free text, names, identifiers, notes and references are
    left out: they are not search terms and may be identifying."""
    found: dict[str, None] = {}

    def add(value: object) -> None:
        if isinstance(value, str) and value.strip():
            with contextlib.suppress(MedchainError):
                found.setdefault(normalize_keyword(value), None)

    for node in _walk(resource):
        if "resourceType" in node:
            add(node["resourceType"])
        coding = node.get("coding")
        if isinstance(coding, list):
            for item in coding:
                if isinstance(item, Mapping):
                    add(item.get("code"))
                    add(item.get("display"))
    return list(found)


def _walk(value: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for name, child in value.items():
            if name not in _SKIPPED_ELEMENTS:
                yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)
