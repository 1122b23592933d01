"""Canonical encoding: round trips, strictness, and committed known answers."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from medchain.types import (
    Attribute,
    Block,
    Certificate,
    CommitSig,
    DecodeError,
    Event,
    Header,
    Receipt,
    Tx,
    block_hash,
    decode,
    encode,
    tx_id,
)
from medchain.types._codec import check_nesting, nesting_depth, read_rlp, rlp_bytes
from tests.hostile import DEEP, hostile, nested

VECTORS = json.loads((Path(__file__).parent / "vectors" / "encoding.json").read_text())

u64 = st.integers(min_value=0, max_value=2**64 - 1)
blob = st.binary(max_size=80)
text = st.text(max_size=40)

txs = st.builds(Tx, text, u64, blob, u64, text, blob, blob)
events = st.builds(Event, text, st.lists(st.builds(Attribute, text, text), max_size=3).map(tuple))
receipts = st.builds(
    Receipt, blob, st.booleans(), text, text, st.lists(events, max_size=3).map(tuple)
)
headers = st.builds(Header, text, u64, blob, u64, blob, blob, blob, blob)
certs = st.builds(
    Certificate,
    u64,
    u64,
    blob,
    st.lists(st.builds(CommitSig, blob, blob), max_size=4).map(tuple),
)
blocks = st.builds(Block, headers, st.lists(txs, max_size=4).map(tuple), certs)


@given(txs)
def test_tx_round_trip(tx: Tx) -> None:
    assert decode(Tx, encode(tx)) == tx


@given(receipts)
def test_receipt_round_trip(receipt: Receipt) -> None:
    assert decode(Receipt, encode(receipt)) == receipt


@given(blocks)
def test_block_round_trip_and_stable_bytes(block: Block) -> None:
    data = encode(block)
    again = decode(Block, data)
    assert again == block
    assert encode(again) == data


@given(txs, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_are_refused(tx: Tx, extra: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(Tx, encode(tx) + extra)


@given(txs, st.data())
def test_any_accepted_mutation_reencodes_identically(tx: Tx, data: st.DataObject) -> None:
    """Strictness: bytes that decode at all are the canonical bytes of what they decode to."""
    raw = bytearray(encode(tx))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        decoded = decode(Tx, bytes(raw))
    except DecodeError:
        return
    assert encode(decoded) == bytes(raw)


def test_non_canonical_integer_is_refused() -> None:
    tx = Tx("c", 1, b"k", 0, "m", b"", b"")
    good = encode(tx)
    # nonce 1 is the single byte 0x01; spell it as a one-byte string 0x81 0x01 instead
    bad = good.replace(b"\x63\x01", b"\x63\x81\x01", 1)
    assert bad != good
    with pytest.raises(DecodeError):
        decode(Tx, bad)


def test_negative_integers_have_no_encoding() -> None:
    with pytest.raises(ValueError):
        encode(Tx("c", -1, b"", 0, "m", b"", b""))


def test_wrong_shape_is_refused() -> None:
    @dataclass(frozen=True)
    class Pair:
        a: int
        b: int

    with pytest.raises(DecodeError):
        decode(Pair, encode(Tx("c", 1, b"", 0, "m", b"", b"")))


def test_a_sequence_is_encoded_as_the_type_it_is_given() -> None:
    blobs = [b"", b"a", b"x" * 60]
    data = encode(blobs, tuple[bytes, ...])
    assert data == rlp.encode(blobs)  # an RLP list of byte strings
    assert encode(tuple(blobs), tuple[bytes, ...]) == data
    assert decode(tuple[bytes, ...], data) == tuple(blobs)
    with pytest.raises(TypeError, match="no canonical encoding"):
        encode(blobs)  # a bare list has no type of its own to encode by
    for other in (rlp.encode(b"one blob"), rlp.encode([b"a", [b"nested"]])):
        with pytest.raises(DecodeError):
            decode(tuple[bytes, ...], other)


def _vector_tx() -> Tx:
    return Tx(
        chain_id="medchain-kat",
        nonce=7,
        sender=bytes(range(32)),
        fee=250,
        method="accounts.transfer",
        args=b"\xc2\x01\x02",
        signature=bytes(range(64, 128)),
    )


def _vector_header() -> Header:
    return Header(
        chain_id="medchain-kat",
        height=1_000_000,
        prev_hash=bytes(32),
        time_ms=1_767_225_600_000,
        proposer=bytes(range(20)),
        tx_root=b"\x11" * 32,
        receipt_root=b"\x22" * 32,
        state_root=b"\x33" * 32,
    )


def test_known_answer_tx() -> None:
    tx = _vector_tx()
    assert encode(tx).hex() == VECTORS["tx"]["encoding"]
    assert tx_id(tx).hex() == VECTORS["tx"]["id"]
    assert tx.signing_bytes().hex() == VECTORS["tx"]["signing_bytes"]


def test_known_answer_header() -> None:
    header = _vector_header()
    assert encode(header).hex() == VECTORS["header"]["encoding"]
    assert block_hash(header).hex() == VECTORS["header"]["hash"]


def test_known_answer_receipt() -> None:
    receipt = Receipt(
        b"\xaa" * 32, False, "not_owner", "only the owner", (Event("e", (Attribute("k", "v"),)),)
    )
    assert encode(receipt).hex() == VECTORS["receipt"]["encoding"]


rlp_items = st.recursive(
    st.binary(max_size=70), lambda inner: st.lists(inner, max_size=5), max_leaves=30
)


def encode_blobs(blobs: tuple[bytes, ...]) -> bytes:
    return encode(blobs, tuple[bytes, ...])


@given(rlp_items)
def test_rlp_writer_matches_the_reference_library(item: object) -> None:
    import rlp

    from medchain.types._codec import rlp_bytes

    assert rlp_bytes(item) == rlp.encode(item)


@given(txs)
def test_decoded_tx_remembers_its_canonical_bytes(tx: Tx) -> None:
    from medchain.types import decode_tx_bytes

    raw = encode(tx)
    decoded = decode_tx_bytes(raw)
    assert decoded.encoded == raw == encode(decoded)
    assert tx_id(decoded) == tx_id(tx)


@given(st.lists(st.binary(max_size=40), max_size=5), st.integers(0, 2**64))
def test_a_cached_transaction_encoding_is_spliced_unchanged(
    payloads: list[bytes], nonce: int
) -> None:
    from medchain.types import Tx, decode_tx_bytes, encode

    fresh = [Tx("chain", nonce, b"\x01" * 32, 0, "m.a", p, b"\x02" * 64) for p in payloads]
    cached = [decode_tx_bytes(encode(tx)) for tx in fresh]  # each remembers its bytes
    assert all("encoded" in tx.__dict__ for tx in cached)

    @dataclass(frozen=True)
    class Batch:
        txs: tuple[Tx, ...]

    assert encode(Batch(tuple(cached))) == encode(Batch(tuple(fresh)))
    assert type(encode(cached[0] if cached else fresh[0] if fresh else Batch(()))) is bytes


@dataclass(frozen=True)
class _Pair:
    name: str
    count: int


@dataclass(frozen=True)
class _Other:
    blob: bytes


@given(text, u64)
def test_arguments_are_decoded_once_per_transaction_and_per_kind(name: str, count: int) -> None:
    tx = Tx("chain", 0, b"\x01" * 32, 0, "m.a", encode(_Pair(name, count)))
    first = tx.decoded_args(_Pair)
    assert first == _Pair(name, count)
    assert tx.decoded_args(_Pair) is first  # remembered
    with pytest.raises(DecodeError):
        tx.decoded_args(_Other)  # another kind is decoded, not taken from the cache
    assert tx.decoded_args(_Pair) is first


def test_arguments_that_do_not_decode_raise_every_time() -> None:
    tx = Tx("chain", 0, b"\x01" * 32, 0, "m.a", b"\xff")
    for _ in range(2):
        with pytest.raises(DecodeError):
            tx.decoded_args(_Pair)


def test_a_list_with_a_truncated_last_item_is_refused() -> None:
    """`c2 01 81`: a list claiming two bytes whose last item's prefix promises a byte
    that never comes. A lenient decoder returns [b"\\x01"], which would give one
    transaction two encodings (and two ids)."""
    tx = Tx("c", 1, b"k", 0, "m", b"", b"\x81")
    raw = bytearray(encode(tx))
    assert raw[-2:] == b"\x81\x81"
    raw[-2] = 0x00  # the signature becomes b"\x00" followed by a dangling prefix
    with pytest.raises(DecodeError):
        decode(Tx, bytes(raw))


# -- hostile input: nesting is bounded by the type, every failure is a DecodeError ------

WIRE_TYPES: list[Any] = [Tx, Block, Header, Receipt, Certificate, tuple[bytes, ...]]


@pytest.mark.parametrize("cls", WIRE_TYPES, ids=str)
def test_lists_nested_deeper_than_the_type_are_refused_without_recursion(cls: Any) -> None:
    with pytest.raises(DecodeError, match="nested deeper"):
        decode(cls, DEEP)
    # one level beyond the deepest valid encoding is already refused
    with pytest.raises(DecodeError, match="nested deeper"):
        decode(cls, nested(nesting_depth(cls) + 1))


def test_nesting_depth_is_what_the_deepest_encoding_needs() -> None:
    assert nesting_depth(bytes) == 0
    assert nesting_depth(tuple[bytes, ...]) == 1
    assert nesting_depth(Tx) == 1
    assert nesting_depth(Certificate) == 3  # a list holding a list of pairs
    assert nesting_depth(Block) == 4  # ... inside the block's list


@given(rlp_items)
def test_the_nesting_scan_counts_exactly_the_depth_of_well_formed_items(item: object) -> None:
    def depth(x: object) -> int:
        return 1 + max(map(depth, x), default=0) if isinstance(x, list) else 0

    data = rlp_bytes(item)
    check_nesting(data, depth(item))
    if depth(item):
        with pytest.raises(DecodeError):
            check_nesting(data, depth(item) - 1)


@pytest.mark.parametrize(
    ("cls", "valid"),
    [
        (Tx, txs.map(encode)),
        (Block, blocks.map(encode)),
        (Receipt, receipts.map(encode)),
        (tuple[bytes, ...], st.lists(blob, max_size=5).map(tuple).map(encode_blobs)),
    ],
    ids=str,
)
def test_hostile_bytes_decode_or_raise_decode_error_only(
    cls: Any, valid: st.SearchStrategy[bytes]
) -> None:
    """Noise, deep nesting, huge length prefixes, wrong shapes and mutations of valid
    encodings: nothing but DecodeError ever escapes `decode`."""

    @given(hostile(valid))
    def decodes_or_refuses(data: bytes) -> None:
        with contextlib.suppress(DecodeError):
            decode(cls, data)

    decodes_or_refuses()


def _pyrlp(data: bytes) -> tuple[str, Any]:
    try:
        return "ok", rlp.decode(data, strict=True)
    except rlp.exceptions.DecodingError:
        return "refused", None


def _ours(data: bytes) -> tuple[str, Any]:
    try:
        return "ok", read_rlp(data)
    except rlp.exceptions.DecodingError:
        return "refused", None


@given(rlp_items)
def test_the_linear_reader_reads_what_pyrlp_reads(structure: Any) -> None:
    data = rlp.encode(structure)
    assert _ours(data) == _pyrlp(data) == ("ok", structure)


@given(rlp_items, st.data())
def test_the_linear_reader_refuses_what_pyrlp_refuses(structure: Any, draw: st.DataObject) -> None:
    """Truncated, extended or bit-flipped encodings: accepted by both with the same
    result, or refused by both (non-canonical prefixes, wrong lengths, trailing bytes)."""
    data = bytearray(rlp.encode(structure))
    edit = draw.draw(st.sampled_from(["flip", "cut", "append"]))
    if edit == "flip" and data:
        at = draw.draw(st.integers(0, len(data) - 1))
        data[at] ^= 1 << draw.draw(st.integers(0, 7))
    elif edit == "cut" and data:
        del data[draw.draw(st.integers(0, len(data) - 1)) :]
    else:
        data += draw.draw(st.binary(min_size=1, max_size=3))
    assert _ours(bytes(data)) == _pyrlp(bytes(data))


@given(st.binary(max_size=40))
def test_the_linear_reader_agrees_with_pyrlp_on_any_bytes(data: bytes) -> None:
    assert _ours(data) == _pyrlp(data)


def test_a_long_list_reads_whole() -> None:
    """pyrlp's reader is quadratic in a list's length; this one reads a list of
    200,000 items as pyrlp encodes it."""
    items = [n.to_bytes(4, "big") for n in range(200_000)]
    assert read_rlp(rlp.encode(items)) == items
