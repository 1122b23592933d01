"""The index contract: entries under the sender's own namespace, written once; lookups
walk labels until the first missing one."""

from __future__ import annotations

import pytest

from medchain.app import (
    MAX_INDEX_ENTRIES,
    MAX_TOKEN_EPOCHS,
    METHODS,
    IndexArgs,
    IndexEntry,
    InvalidArgument,
    sse_lookup,
)
from medchain.crypto import (
    VALUE_SIZE,
    AccountKeys,
    EntryKind,
    SearchToken,
    entry_label,
    epoch_keys,
    make_entry,
    search_key,
)
from tests.app.conftest import World

RECORD = b"\x42" * 16


def _entries(keys: AccountKeys, word: str, epoch: int, start: int, count: int) -> list[IndexEntry]:
    ek = epoch_keys(search_key(keys), word, epoch)
    return [IndexEntry(*make_entry(ek, start + i, EntryKind.ADD, RECORD)) for i in range(count)]


def _token(keys: AccountKeys, word: str, epochs: int) -> SearchToken:
    key = search_key(keys)
    return SearchToken(tuple(epoch_keys(key, word, e).label_key for e in range(epochs)))


def test_index_is_a_contract_method() -> None:
    assert METHODS["search.index"][0] is IndexArgs


def test_entries_are_found_epoch_by_epoch_in_order(world: World, doctor: AccountKeys) -> None:
    first, second = _entries(doctor, "asthma", 0, 0, 3), _entries(doctor, "asthma", 1, 0, 2)
    receipt = world.ok(doctor, "search.index", IndexArgs(tuple(first + second)))
    assert receipt.events[0].kind == "search.indexed"
    assert ("entries", "5") in [(a.key, a.value) for a in receipt.events[0].attributes]
    found = sse_lookup(world.ledger.state, doctor.address, _token(doctor, "asthma", 3))
    assert found == [[e.value for e in first], [e.value for e in second], []]
    assert sse_lookup(world.ledger.state, doctor.address, _token(doctor, "copd", 1)) == [[]]


def test_lookup_stops_at_the_first_missing_label(world: World, doctor: AccountKeys) -> None:
    entries = _entries(doctor, "asthma", 0, 0, 4)
    world.ok(doctor, "search.index", IndexArgs((entries[0], entries[1], entries[3])))
    (found,) = sse_lookup(world.ledger.state, doctor.address, _token(doctor, "asthma", 1))
    assert found == [entries[0].value, entries[1].value]


def test_a_label_is_written_once(world: World, doctor: AccountKeys) -> None:
    entries = _entries(doctor, "asthma", 0, 0, 2)
    world.ok(doctor, "search.index", IndexArgs((entries[0],)))
    replaced = IndexEntry(entries[0].label, b"\x00" * VALUE_SIZE)
    receipt = world.call(doctor, "search.index", IndexArgs((entries[1], replaced)))
    assert not receipt.ok and receipt.code == "label_taken"
    (found,) = sse_lookup(world.ledger.state, doctor.address, _token(doctor, "asthma", 1))
    assert found == [entries[0].value]  # untouched, and entries[1] not written either


def test_a_label_twice_in_one_transaction_is_refused(world: World, doctor: AccountKeys) -> None:
    (entry,) = _entries(doctor, "asthma", 0, 0, 1)
    receipt = world.call(doctor, "search.index", IndexArgs((entry, entry)))
    assert receipt.code == "label_taken"


def test_namespaces_isolate_owners(world: World, doctor: AccountKeys, doctor2: AccountKeys) -> None:
    mine = _entries(doctor, "asthma", 0, 0, 2)
    world.ok(doctor, "search.index", IndexArgs(tuple(mine)))
    token = _token(doctor, "asthma", 1)
    # the very labels and token, under another owner, find nothing
    assert sse_lookup(world.ledger.state, doctor2.address, token) == [[]]
    # doctor2 writing doctor's labels lands in doctor2's namespace only
    forged = tuple(IndexEntry(e.label, b"\x01" * VALUE_SIZE) for e in mine)
    world.ok(doctor2, "search.index", IndexArgs(forged))
    assert sse_lookup(world.ledger.state, doctor.address, token) == [[e.value for e in mine]]
    assert sse_lookup(world.ledger.state, doctor2.address, token) == [[e.value for e in forged]]


def test_unregistered_accounts_cannot_index(world: World) -> None:
    stranger = AccountKeys.generate()
    entries = tuple(_entries(stranger, "asthma", 0, 0, 1))
    receipt = world.call(stranger, "search.index", IndexArgs(entries))
    assert receipt.code == "not_registered"


@pytest.mark.parametrize(
    "entry",
    [
        IndexEntry(b"\x01" * 31, b"\x00" * VALUE_SIZE),
        IndexEntry(b"\x01" * 33, b"\x00" * VALUE_SIZE),
        IndexEntry(b"\x01" * 32, b"\x00" * (VALUE_SIZE - 1)),
        IndexEntry(b"\x01" * 32, b"\x00" * (VALUE_SIZE + 1)),
    ],
)
def test_entries_have_fixed_sizes(world: World, doctor: AccountKeys, entry: IndexEntry) -> None:
    receipt = world.call(doctor, "search.index", IndexArgs((entry,)))
    assert receipt.code == "invalid_argument" and "SDK" in receipt.message


def test_entries_per_transaction_are_bounded(world: World, doctor: AccountKeys) -> None:
    assert world.call(doctor, "search.index", IndexArgs(())).code == "invalid_argument"
    many = _entries(doctor, "asthma", 0, 0, MAX_INDEX_ENTRIES + 1)
    receipt = world.call(doctor, "search.index", IndexArgs(tuple(many)))
    assert receipt.code == "invalid_argument" and "split" in receipt.message
    world.ok(doctor, "search.index", IndexArgs(tuple(many[:MAX_INDEX_ENTRIES])))


def test_tokens_are_bounded(world: World, doctor: AccountKeys) -> None:
    with pytest.raises(InvalidArgument):
        sse_lookup(world.ledger.state, doctor.address, SearchToken((b"\x00" * 32,) * 4097))
    assert MAX_TOKEN_EPOCHS == 4096
    with pytest.raises(InvalidArgument, match="32 bytes"):
        sse_lookup(world.ledger.state, doctor.address, SearchToken((b"\x00" * 16,)))


def test_state_keys_hold_no_plaintext(world: World, doctor: AccountKeys) -> None:
    entries = _entries(doctor, "asthma-xyzzy", 0, 0, 2)
    world.ok(doctor, "search.index", IndexArgs(tuple(entries)))
    committed = world.ledger.state.committed()
    sse = {k: v for k, v in committed.items() if k.startswith(b"sse/")}
    assert len(sse) == 2
    label_key = epoch_keys(search_key(doctor), "asthma-xyzzy", 0).label_key
    assert set(sse) == {b"sse/" + doctor.address + entry_label(label_key, i) for i in range(2)}
    assert not any(b"xyzzy" in k or b"xyzzy" in v for k, v in committed.items())
