"""Checking the working chain against its anchors (paper 003's passive and active
verification).

Stored blocks are checked from their raw rows, as an attacker who edits the database
would leave them: each block's id is recomputed from its stored header bytes and
compared with the `hash` column, its transactions with the header's tx root, its
`prev_hash` with the id of the block below; then the anchored heights are compared
with the anchors. An anchor counts only if a quorum of the validators signed it: one
that fails is reported, never trusted. Only a mismatch with a FINAL anchor is the
alarm; one with a pending anchor is reported apart, as that anchor may still be
reorganised away on the verification chain.

`ChainAuditor` does this in bounded steps (a node runs it on a worker thread);
`verify_store` is one full pass; `compare_hashes` checks the hashes another node
serves.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medchain.anchor._types import Anchor
from medchain.consensus import Checkpoint, quorum_size, verify
from medchain.crypto import merkle_root
from medchain.store import ChainStore, StoreError
from medchain.types import ZERO_HASH, Header, tagged_hash, tx_id_of_encoding

MISMATCH_KINDS = ("block_hash", "state_root", "tx_root", "link", "stored_hash", "missing")
"""What can disagree, see `Mismatch.what`."""

DEFAULT_NEW_BLOCKS = 20_000
"""New blocks one `ChainAuditor.step` checks at most (about half a second of work)."""
DEFAULT_ANCHOR_CHECKS = 2_000
"""Anchor signatures sets one step verifies at most, beyond those a verdict needs."""
_BATCH = 1_024
"""Rows read per query."""


@dataclasses.dataclass(frozen=True, slots=True)
class Mismatch:
    """Where the chain disagrees with its anchors or with itself."""

    height: int
    what: str
    """One of `MISMATCH_KINDS`: `block_hash` / `state_root` (our block at an anchored
    height differs from the anchor), `tx_root` (a stored block's transactions do not
    match its header), `link` (its `prev_hash` is not the id of the stored block
    below, or the header is not for this height and chain), `stored_hash` (the hash
    column disagrees with the recomputed id, or the row does not decode), `missing`
    (no block where one must be)."""
    expected: bytes
    found: bytes
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "what": self.what,
            "expected": self.expected.hex(),
            "found": self.found.hex(),
            "detail": self.detail,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyReport:
    chain_id: str
    tip_height: int
    """Highest height the checked chain holds (-1 for none)."""
    checked_height: int
    """Every block up to here was checked at least once (-1 for none)."""
    last_verified_height: int
    """Highest anchored height whose final anchor matches, with everything below it
    intact; -1 if there is none."""
    anchors_total: int
    anchors_final: int
    anchors_pending: int
    invalid_anchors: tuple[int, ...]
    """Heights of anchors that are not a quorum's valid signatures for this chain."""
    anchors_unchecked: int
    """Anchors whose signatures were not verified yet (bounded work per step)."""
    first_mismatch: Mismatch | None
    """The lowest disagreement with the chain's own links or a final anchor: the alarm."""
    pending_mismatch: Mismatch | None = None
    """The lowest disagreement with a pending anchor: a warning until it is final."""

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["invalid_anchors"] = list(self.invalid_anchors)
        for key in ("first_mismatch", "pending_mismatch"):
            mismatch = getattr(self, key)
            document[key] = None if mismatch is None else mismatch.to_json()
        document["ok"] = self.ok
        return document


# -- anchors ------------------------------------------------------------------------


def anchor_is_valid(anchor: Anchor, validators: tuple[bytes, ...], quorum: int) -> bool:
    """Its signatures are by distinct members of `validators`, at least `quorum` (and
    at least one) of them, each a valid consensus `Checkpoint` signature on (height,
    block hash, state root) under the anchor's chain id."""
    allowed = set(validators)
    signers: set[bytes] = set()
    for item in anchor.signatures:
        if item.validator not in allowed or item.validator in signers:
            return False
        checkpoint = Checkpoint(
            anchor.height, anchor.block_hash, anchor.state_root, item.validator, item.signature
        )
        if not verify(anchor.chain_id, checkpoint):
            return False
        signers.add(item.validator)
    return len(signers) >= max(quorum, 1)


def _order(anchor: Anchor) -> tuple[bool, int, bytes]:
    """Which anchor of a height counts: final before pending, then the earliest."""
    return (not anchor.final, anchor.eth_block, anchor.eth_tx)


class _AnchorBook:
    """The anchors of one chain by height; each anchor's signatures are verified at
    most once, and only when a verdict needs them or there is budget to spare."""

    def __init__(self, chain_id: str, validators: tuple[bytes, ...], quorum: int | None) -> None:
        self.chain_id = chain_id
        self._validators = validators
        self._quorum = quorum_size(len(validators)) if quorum is None else quorum
        self._valid: dict[tuple[object, ...], bool] = {}
        self.by_height: dict[int, list[Anchor]] = {}
        self.anchors: Sequence[Anchor] = ()

    def load(self, anchors: Sequence[Anchor]) -> None:
        by_height: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            by_height.setdefault(anchor.height, []).append(anchor)
        for group in by_height.values():
            group.sort(key=_order)
        self.by_height = dict(sorted(by_height.items()))
        self.anchors = anchors

    @staticmethod
    def _key(anchor: Anchor) -> tuple[object, ...]:
        """What validity depends on (not finality, which changes)."""
        return (
            anchor.chain_id,
            anchor.height,
            anchor.block_hash,
            anchor.state_root,
            anchor.signatures,
        )

    def valid(self, anchor: Anchor) -> bool:
        key = self._key(anchor)
        known = self._valid.get(key)
        if known is None:
            known = anchor.chain_id == self.chain_id and anchor_is_valid(
                anchor, self._validators, self._quorum
            )
            self._valid[key] = known
        return known

    def reference(self, height: int) -> Anchor | None:
        """The anchor that counts at `height`: the first valid one in `_order`."""
        return next((a for a in self.by_height.get(height, ()) if self.valid(a)), None)

    def check_some(self, budget: int | None) -> None:
        """Verify up to `budget` (None: all) anchors not verified yet, lowest first."""
        for group in self.by_height.values():
            for anchor in group:
                if budget is not None and budget <= 0:
                    return
                if self._key(anchor) not in self._valid:
                    self.valid(anchor)
                    if budget is not None:
                        budget -= 1

    def invalid_heights(self) -> tuple[int, ...]:
        return tuple(
            h
            for h, group in self.by_height.items()
            if any(self._valid.get(self._key(a)) is False for a in group)
        )

    def unchecked(self) -> int:
        return sum(1 for a in self.anchors if self._key(a) not in self._valid)


# -- the verdict --------------------------------------------------------------------

Observed = Callable[[int], tuple[bytes, bytes] | None]
"""(block id, state root) of the checked chain at a height, None if it has none."""


def _against(anchor: Anchor, height: int, seen: tuple[bytes, bytes] | None) -> Mismatch | None:
    side = "final" if anchor.final else "pending"
    if seen is None:
        return Mismatch(
            height, "missing", anchor.block_hash, b"", f"no block at this {side}-anchored height"
        )
    block_id, state_root = seen
    if block_id != anchor.block_hash:
        return Mismatch(
            height,
            "block_hash",
            anchor.block_hash,
            block_id,
            f"the {side} anchor names another block",
        )
    if state_root != anchor.state_root:
        return Mismatch(
            height,
            "state_root",
            anchor.state_root,
            state_root,
            f"the {side} anchor names another state root",
        )
    return None


def _judge(
    book: _AnchorBook,
    tip: int,
    checked: int,
    observed: Observed,
    integrity: Mismatch | None,
    budget: int | None,
    base: int = 0,
) -> VerifyReport:
    """Compare the anchored heights from `base` (the lowest block the store holds) up
    to `checked` with what was observed there."""
    first = integrity
    pending: Mismatch | None = None
    heights = [h for h in book.by_height if base <= h <= checked]
    for height in heights:
        if first is not None and height >= first.height:
            break
        seen = observed(height)
        if seen is not None and all(
            (a.block_hash, a.state_root) == seen for a in book.by_height[height]
        ):
            continue  # every anchor agrees: no need to know which ones are valid
        anchor = book.reference(height)
        mismatch = None if anchor is None else _against(anchor, height, seen)
        if mismatch is None:
            continue
        assert anchor is not None
        if anchor.final:
            first = mismatch
        elif pending is None:
            pending = mismatch
    top = checked if first is None else first.height - 1
    verified = -1
    for height in reversed(heights):
        if height > top:
            continue
        seen = observed(height)
        if seen is None or not any(
            a.final and (a.block_hash, a.state_root) == seen for a in book.by_height[height]
        ):
            continue
        anchor = book.reference(height)
        if anchor is not None and anchor.final and _against(anchor, height, seen) is None:
            verified = height
            break
    book.check_some(budget)
    final = sum(1 for a in book.anchors if a.final)
    return VerifyReport(
        chain_id=book.chain_id,
        tip_height=tip,
        checked_height=checked,
        last_verified_height=verified,
        anchors_total=len(book.anchors),
        anchors_final=final,
        anchors_pending=len(book.anchors) - final,
        invalid_anchors=book.invalid_heights(),
        anchors_unchecked=book.unchecked(),
        first_mismatch=first,
        pending_mismatch=pending,
    )


def compare_hashes(
    hashes: Mapping[int, tuple[bytes, bytes]],
    anchors: Sequence[Anchor],
    validators: tuple[bytes, ...],
    quorum: int | None = None,
    *,
    chain_id: str | None = None,
) -> VerifyReport:
    """Check another node's chain from the (block hash, state root) it serves per
    anchored height. Heights above the highest one served are not compared; an
    anchored height below it that was not served is `missing`. `chain_id` defaults to
    the anchors' (it must then be one); `quorum` to the consensus quorum."""
    if chain_id is None:
        ids = {a.chain_id for a in anchors}
        if len(ids) > 1:
            raise ValueError(f"the anchors are of several chains ({sorted(ids)}); pass chain_id")
        chain_id = ids.pop() if ids else ""
    book = _AnchorBook(chain_id, validators, quorum)
    book.load(anchors)
    tip = max(hashes, default=-1)
    return _judge(book, tip, tip, hashes.get, None, None)


# -- stored blocks ------------------------------------------------------------------


def _item(data: bytes, pos: int, end: int) -> tuple[int, int, bool]:
    """(payload start, item end, is a list) of the RLP item at `pos`; ValueError if it
    is not canonical or runs past `end`."""
    if pos >= end:
        raise ValueError("truncated")
    first = data[pos]
    if first < 0x80:
        return pos, pos + 1, False
    is_list = first >= 0xC0
    short = first - (0xC0 if is_list else 0x80)
    if short <= 55:
        start, length = pos + 1, short
        if not is_list and length == 1 and start < end and data[start] < 0x80:
            raise ValueError("a single low byte must not carry a prefix")
    else:
        size = short - 55
        start = pos + 1 + size
        if start > end or data[pos + 1] == 0:
            raise ValueError("bad length prefix")
        length = int.from_bytes(data[pos + 1 : start], "big")
        if length <= 55:
            raise ValueError("long form for a short length")
    if start + length > end:
        raise ValueError("truncated")
    return start, start + length, is_list


def _scalar_parsers() -> tuple[Callable[[bytes], object], ...]:
    """How each field of `Header` is read from its RLP bytes, as the strict codec
    reads it; every field is a scalar (a nested one would need the codec)."""
    parsers: list[Callable[[bytes], object]] = []
    for field in dataclasses.fields(Header):
        kind = typing.get_type_hints(Header)[field.name]
        if kind is int:
            parsers.append(_canonical_int)
        elif kind is str:
            parsers.append(lambda raw: raw.decode("utf-8"))
        elif kind is bytes:
            parsers.append(bytes)
        else:
            raise TypeError(f"Header.{field.name} is not a scalar; parse headers with decode")
    return tuple(parsers)


def _canonical_int(raw: bytes) -> int:
    if raw[:1] == b"\x00":
        raise ValueError("integer with a leading zero byte")
    return int.from_bytes(raw, "big")


_HEADER_FIELDS = _scalar_parsers()


def _header(data: bytes, start: int, end: int) -> Header:
    """The header encoded at data[start:end], read as strictly as `decode` reads it
    (so those bytes are its canonical encoding) in a third of the time."""
    payload, item_end, is_list = _item(data, start, end)
    spans = _list_items(data, payload, item_end) if is_list and item_end == end else []
    if len(spans) != len(_HEADER_FIELDS):
        raise ValueError("not an encoded header")
    values = []
    for (s, e), parse in zip(spans, _HEADER_FIELDS, strict=True):
        value_start, value_end, nested = _item(data, s, e)
        if nested:
            raise ValueError("a header field is a list")
        values.append(parse(data[value_start:value_end]))
    return Header(*values)  # type: ignore[arg-type]


def _list_items(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Spans (with prefixes) of the items of a list whose payload is data[start:end]."""
    spans = []
    pos = start
    while pos < end:
        _, item_end, _ = _item(data, pos, end)
        spans.append((pos, item_end))
        pos = item_end
    return spans


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    """One stored block as checked on its own (the link needs the block below)."""

    id: bytes
    prev_hash: bytes
    state_root: bytes
    problem: Mismatch | None


def _corrupt(height: int, stored_hash: bytes, why: str) -> _Row:
    return _Row(b"", b"", b"", Mismatch(height, "stored_hash", b"", stored_hash, f"the row {why}"))


def _check_row(
    chain_id: str, height: int, stored_hash: bytes, data: bytes, body: bool = True
) -> _Row:
    """Recompute a stored block's id from its header bytes and (if `body`) its tx
    root from its transactions' bytes; nothing else is decoded. (The certificate is
    not covered by the id, so only its shape is checked.)"""
    try:
        start, end, is_list = _item(data, 0, len(data))
        spans = _list_items(data, start, end) if is_list and end == len(data) else []
        if len(spans) != 3:
            return _corrupt(height, stored_hash, "is not an encoded block")
        (h_start, h_end), (t_start, t_end), (c_start, c_end) = spans
        header = _header(data, h_start, h_end)
        txs_start, txs_end, txs_list = _item(data, t_start, t_end)
        if not txs_list or not _item(data, c_start, c_end)[2]:
            return _corrupt(height, stored_hash, "is not an encoded block")
        tx_spans = _list_items(data, txs_start, txs_end) if body else []
    except ValueError as exc:
        return _corrupt(height, stored_hash, f"does not decode as a block ({exc})")
    block_id = tagged_hash("medchain/block", data[h_start:h_end])
    problem = None
    if stored_hash != block_id:
        problem = Mismatch(
            height, "stored_hash", block_id, stored_hash, "the hash column is not the block's id"
        )
    elif header.height != height or header.chain_id != chain_id:
        problem = Mismatch(
            height,
            "link",
            b"",
            b"",
            f"the block stored at {height} is block {header.height} of {header.chain_id!r}",
        )
    elif body:
        root = merkle_root([tx_id_of_encoding(data[s:e]) for s, e in tx_spans])
        if root != header.tx_root:
            problem = Mismatch(
                height,
                "tx_root",
                header.tx_root,
                root,
                "the stored transactions are not the ones the header commits to",
            )
    return _Row(block_id, header.prev_hash, header.state_root, problem)


def _link(height: int, row: _Row, below: bytes | None) -> Mismatch | None:
    if row.problem is not None or below is None or row.prev_hash == below:
        return row.problem
    return Mismatch(
        height, "link", below, row.prev_hash, "prev_hash is not the id of the stored block below"
    )


class StoredBlocks:
    """Raw block rows (height, stored hash, data) on a read-only SQLite connection of
    their own: for auditing, and for rebuilding a store too damaged to open."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            uri = self._path.resolve().as_uri() + "?mode=ro"
            try:
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the chain store {self._path}: {exc}") from exc
        return self._db

    def tip(self) -> int:
        (tip,) = self._conn().execute("SELECT MAX(height) FROM blocks").fetchone()
        return -1 if tip is None else int(tip)

    def base(self) -> int:
        """The lowest height the store holds by design: above 0 for a store joined from
        a snapshot, until its backfill reaches genesis (`ChainStore.base_height`)."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'base_height'").fetchone()
        return int(row[0]) if row is not None and isinstance(row[0], int) else 0

    def between(self, low: int, high: int) -> Iterable[tuple[int, bytes, bytes]]:
        start = low
        while start <= high:
            rows = (
                self._conn()
                .execute(
                    "SELECT height, hash, data FROM blocks WHERE height BETWEEN ? AND ? "
                    "ORDER BY height LIMIT ?",
                    (start, high, _BATCH),
                )
                .fetchall()
            )
            if not rows:
                return
            for height, hash_, data in rows:
                yield int(height), bytes(hash_), bytes(data)
            start = int(rows[-1][0]) + 1

    def sizes(self, low: int, high: int) -> Iterable[tuple[int, int]]:
        """(height, stored size) of the blocks from `low` to `high`, without reading them."""
        start = low
        while start <= high:
            rows = (
                self._conn()
                .execute(
                    "SELECT height, length(data) FROM blocks WHERE height BETWEEN ? AND ? "
                    "ORDER BY height LIMIT ?",
                    (start, high, _BATCH),
                )
                .fetchall()
            )
            if not rows:
                return
            for height, size in rows:
                yield int(height), int(size)
            start = int(rows[-1][0]) + 1

    def at(self, heights: Sequence[int]) -> list[tuple[int, bytes, bytes]]:
        found = []
        for i in range(0, len(heights), 500):
            chunk = heights[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn().execute(
                f"SELECT height, hash, data FROM blocks WHERE height IN ({marks})", chunk
            )
            found += [(int(h), bytes(x), bytes(d)) for h, x, d in rows]
        return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# -- the auditor --------------------------------------------------------------------


class ChainAuditor:
    """Resumable verification of one chain store against its anchors.

    Each `step` checks the blocks stored since the last step (up to `max_new_blocks`)
    and re-checks `max_blocks` older ones in a rolling sweep, so an edit of an old
    row is still caught while every step's work stays bounded. It reads the store's
    file on a read-only SQLite connection of its own, opened by the first step: run
    every step on one thread (WAL lets it read while the node writes)."""

    def __init__(
        self,
        store: ChainStore | Path,
        validators: tuple[bytes, ...],
        quorum: int | None = None,
        *,
        chain_id: str | None = None,
        max_new_blocks: int | None = DEFAULT_NEW_BLOCKS,
        max_anchor_checks: int | None = DEFAULT_ANCHOR_CHECKS,
        check_new_bodies: bool = True,
    ) -> None:
        """`store` is an open store, or the path of one (then pass `chain_id`: a
        store too damaged to open can still be audited). `quorum` defaults to the
        consensus quorum of `validators`; None for a `max_*` means no bound.
        `check_new_bodies` False reads only the headers of new blocks (a node that
        checked each body as it committed it leaves bodies to the sweep)."""
        if isinstance(store, ChainStore):
            if store.in_memory:
                raise StoreError(
                    "the chain auditor reads the store's file on its own connection; "
                    "an in-memory store has none, so give it a store on disk"
                )
            path, chain_id = store.path, store.chain_id
        elif chain_id is None:
            raise ValueError(f"pass the chain id of the store at {store}")
        else:
            path = store
        self.chain_id = chain_id
        self._rows = StoredBlocks(path)
        self._book = _AnchorBook(self.chain_id, validators, quorum)
        self._max_new = max_new_blocks
        self._new_bodies = check_new_bodies
        self._max_checks = max_anchor_checks
        self._next = 0
        """The next height never checked."""
        self._last_id: bytes | None = ZERO_HASH
        """Id of the block at `_next - 1` (the genesis block links to zeros)."""
        self._sweep = 0
        """The next height the sweep re-checks."""
        self._base = 0
        """The lowest height the store holds (see `StoredBlocks.base`)."""
        self._sweep_credit = 0
        """Stored bytes the byte-bounded sweep may still read (see `_sweep_bytes`)."""
        self._problems: dict[int, Mismatch] = {}
        self._seen: dict[int, tuple[bytes, bytes]] = {}
        """(block id, state root) of checked blocks at anchored heights."""
        self._tip = -1

    def close(self) -> None:
        self._rows.close()

    def step(
        self,
        anchors: Sequence[Anchor],
        max_blocks: int = 2_000,
        *,
        sweep_bytes: int | None = None,
    ) -> VerifyReport:
        """Check new blocks and `max_blocks` old ones (or, with `sweep_bytes`, old ones
        up to that many stored bytes: big blocks cost by their size); compare with
        `anchors` (all of them, each time: the verification chain's current view)."""
        book = self._book
        known = set(book.by_height)
        book.load(anchors)
        late = [h for h in book.by_height if h not in known and h < self._next]
        self._recheck_heights(late)
        self._tip = self._rows.tip()
        self._base = self._rows.base()
        if self._next < self._base:  # joined from a snapshot: nothing is held below
            self._next, self._last_id = self._base, None
        self._check_new()
        if sweep_bytes is not None:
            self._sweep_bytes(sweep_bytes)
        elif max_blocks > 0:
            self._sweep_old(max_blocks)
        integrity = self._problems[min(self._problems)] if self._problems else None
        return _judge(
            book, self._tip, self._next - 1, self._seen.get, integrity, self._max_checks, self._base
        )

    def _record(self, height: int, row: _Row, problem: Mismatch | None) -> None:
        if problem is None:
            self._problems.pop(height, None)
        else:
            self._problems[height] = problem
        if height in self._book.by_height and row.id:
            self._seen[height] = (row.id, row.state_root)
        else:
            self._seen.pop(height, None)

    def _missing(self, height: int) -> None:
        self._problems[height] = Mismatch(
            height, "missing", b"", b"", "no stored block at this height below the tip"
        )
        self._seen.pop(height, None)

    def _recheck_heights(self, heights: list[int]) -> None:
        """Anchors that arrived for blocks already checked: read those blocks again
        (their links are left to the sweep)."""
        for height, hash_, data in self._rows.at(heights):
            row = _check_row(self.chain_id, height, hash_, data)
            self._record(height, row, row.problem or self._problems.get(height))

    def _check_new(self) -> None:
        if self._tip < self._next - 1:
            for height in range(self._tip + 1, self._next):
                self._missing(height)  # blocks once checked are gone
            return
        high = (
            self._tip if self._max_new is None else min(self._tip, self._next + self._max_new - 1)
        )
        expected, below = self._next, self._last_id
        for height, hash_, data in self._rows.between(self._next, high):
            for gap in range(expected, height):
                self._missing(gap)
                below = None
            row = _check_row(self.chain_id, height, hash_, data, self._new_bodies)
            self._record(height, row, _link(height, row, below))
            expected, below = height + 1, row.id or None
        for gap in range(expected, high + 1):
            self._missing(gap)
            below = None
        self._next, self._last_id = max(self._next, high + 1), below

    def _sweep_old(self, budget: int) -> None:
        """Re-check `budget` blocks below `_next`, from where the sweep stopped,
        wrapping around to the lowest block held."""
        end = self._next - 1
        budget = min(budget, end - self._base + 1)
        while budget > 0:
            if not self._base <= self._sweep <= end:
                self._sweep = self._base
            low, high = self._sweep, min(end, self._sweep + budget - 1)
            self._recheck_range(low, high)
            budget -= high - low + 1
            self._sweep = high + 1

    def _sweep_bytes(self, budget: int) -> None:
        """Re-check old blocks from where the sweep stopped, `budget` stored bytes a
        step on average: unspent budget carries over, so a block larger than one
        step's budget waits for the steps it needs instead of being read at once;
        wraps around to the lowest block held."""
        end = self._next - 1
        if end < self._base:
            return
        if not self._base <= self._sweep <= end:
            self._sweep = self._base
        self._sweep_credit += budget  # bounded: it only grows while one block waits
        high = self._sweep - 1
        for height, size in self._rows.sizes(self._sweep, end):
            if size > self._sweep_credit:
                break
            self._sweep_credit -= size
            high = height
        if high >= self._sweep:
            self._recheck_range(self._sweep, high)
            self._sweep = high + 1

    def _recheck_range(self, low: int, high: int) -> None:
        below: bytes | None = ZERO_HASH if low == 0 else None
        expected = low
        first = max(0, low - 1)
        for height, hash_, data in self._rows.between(first, high):
            row = _check_row(self.chain_id, height, hash_, data)
            if height < low:
                below = row.id or None
                continue
            for gap in range(expected, height):
                self._missing(gap)
                below = None
            self._record(height, row, _link(height, row, below))
            expected, below = height + 1, row.id or None
        for gap in range(expected, high + 1):
            self._missing(gap)


def verify_store(
    store: ChainStore | Path,
    anchors: Sequence[Anchor],
    validators: tuple[bytes, ...],
    quorum: int | None = None,
    *,
    chain_id: str | None = None,
) -> VerifyReport:
    """One full pass over every stored block and every anchor (for tools); `store`
    and `chain_id` as for `ChainAuditor`."""
    auditor = ChainAuditor(
        store, validators, quorum, chain_id=chain_id, max_new_blocks=None, max_anchor_checks=None
    )
    try:
        return auditor.step(anchors, max_blocks=0)
    finally:
        auditor.close()
