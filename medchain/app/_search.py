"""Encrypted keyword index (the chain's half of `crypto/_sse.py`): store entries,
answer lookups.

An entry is a 32-byte pseudorandom label and a fixed-size encrypted value, stored under
the submitting account's own namespace (`sse/ || owner || label`): nobody can add to,
pollute or overwrite another account's index, and an entry, once written, is never
replaced. The chain learns how many entries each transaction adds, never a keyword
or a record id. A lookup walks the labels a search token derives, epoch by epoch,
until the first missing one: the node learns which entries match, not what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument, LabelTaken
from medchain.app._registry import require_identity
from medchain.app._state import State
from medchain.crypto import LABEL_KEY_SIZE, LABEL_SIZE, VALUE_SIZE, SearchToken, entry_labels

MAX_INDEX_ENTRIES = 256
"""Most entries one `search.index` transaction may write (consensus-critical)."""
MAX_TOKEN_EPOCHS = 4_096
"""Most label keys one lookup may carry (a keyword searched and updated this many times
needs a fresh index; see docs/PRIVACY.md)."""

_PREFIX = b"sse/"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    label: bytes
    """HMAC(K1, counter): 32 pseudorandom bytes."""
    value: bytes
    """AES-GCM(K2, kind || record id): VALUE_SIZE bytes only the index owner can open."""


@dataclass(frozen=True, slots=True)
class IndexArgs:
    entries: tuple[IndexEntry, ...]


def index_key(owner: bytes, label: bytes) -> bytes:
    return _PREFIX + owner + label


def index(state: State, call: Call, args: IndexArgs) -> None:
    """Add entries to the sender's own index; all or nothing."""
    require_identity(state, call.sender)
    count = len(args.entries)
    if not 1 <= count <= MAX_INDEX_ENTRIES:
        raise InvalidArgument(
            f"a search.index transaction carries 1 to {MAX_INDEX_ENTRIES} entries, "
            f"this one {count}; split the entries over several transactions"
        )
    seen: set[bytes] = set()
    for entry in args.entries:
        if len(entry.label) != LABEL_SIZE or len(entry.value) != VALUE_SIZE:
            raise InvalidArgument(
                f"an index entry is a {LABEL_SIZE}-byte label and a {VALUE_SIZE}-byte value; "
                "build entries with the medchain SDK"
            )
        if entry.label in seen or state.get(index_key(call.sender, entry.label)) is not None:
            raise LabelTaken(
                f"label {entry.label.hex()[:16]}… is already in your index: entries are never "
                "overwritten. Your client's search state is behind the chain (restored from a "
                "backup, or another device indexed with this key); the SDK rebuilds it and "
                "retries"
            )
        seen.add(entry.label)
    for entry in args.entries:
        state.set(index_key(call.sender, entry.label), entry.value)
    call.emit("search.indexed", owner=call.sender, entries=count)


def sse_lookup(state: State, owner: bytes, token: SearchToken) -> list[list[bytes]]:
    """The encrypted values in `owner`'s index under each label key of `token`, in epoch
    and counter order: for each key, the entries at counters 0, 1, … up to the first
    label that is missing. This is all a node does for a search."""
    if len(token.label_keys) > MAX_TOKEN_EPOCHS:
        raise InvalidArgument(
            f"a search token carries at most {MAX_TOKEN_EPOCHS} label keys, this one "
            f"{len(token.label_keys)}"
        )
    found: list[list[bytes]] = []
    prefix = _PREFIX + owner
    for label_key in token.label_keys:
        if len(label_key) != LABEL_KEY_SIZE:
            raise InvalidArgument(f"a label key is {LABEL_KEY_SIZE} bytes; rebuild the token")
        values: list[bytes] = []
        for label in entry_labels(label_key):
            value = state.get(prefix + label)
            if value is None:
                break
            values.append(value)
        found.append(values)
    return found


METHODS: Methods = {
    "search.index": (IndexArgs, index),
}
