"""Hostile bytes for every layer that decodes what a peer or a client sent: lists
nested far deeper than any type, truncated and bit-flipped encodings, length prefixes
that promise gigabytes, lists where strings belong, and plain noise. Shared by the
codec, engine, node and API tests so each layer meets the same attacks."""

from __future__ import annotations

from hypothesis import strategies as st

from medchain.types._codec import rlp_bytes


def nested(depth: int, core: bytes = b"\xc0") -> bytes:
    """`core` (an RLP item) wrapped in `depth` one-item lists, built without recursion."""
    data = core
    for _ in range(depth):
        data = _prefix(len(data), 0xC0) + data
    return data


def _prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


DEEP = nested(2_000)
"""The frame that once halted a validator: 2,000 levels, about 5.8 KB."""

rlp_trees = st.recursive(
    st.binary(max_size=40), lambda inner: st.lists(inner, max_size=4), max_leaves=12
)
"""Well-formed RLP of any shape: the right syntax with the wrong types."""


@st.composite
def huge_length_prefixes(draw: st.DrawFn) -> bytes:
    """A string or list header whose length (up to 2^64 - 1) runs far past the data."""
    width = draw(st.integers(1, 8))
    length = draw(st.integers(56, 2 ** (8 * width) - 1))
    offset = draw(st.sampled_from((0x80, 0xC0)))
    size = length.to_bytes(width, "big")
    return bytes((offset + 55 + width,)) + size + draw(st.binary(max_size=16))


@st.composite
def mutations(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` truncated, with bytes flipped, inserted or dropped, or nested deeper."""
    how = draw(st.sampled_from(("truncate", "flip", "insert", "drop", "wrap", "deep")))
    data = bytearray(valid)
    if how == "truncate" or not data:
        return bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    at = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        data[at] ^= draw(st.integers(1, 255))
    elif how == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif how == "drop":
        del data[at : at + draw(st.integers(1, 8))]
    elif how == "wrap":
        return nested(draw(st.integers(1, 3)), bytes(data))
    else:
        return nested(draw(st.integers(64, 3_000)), bytes(data))
    return bytes(data)


def hostile(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Every kind of bad input above, plus mutations of what `valid` draws."""
    return st.one_of(
        st.binary(max_size=200),
        st.integers(2, 3_000).map(nested),
        huge_length_prefixes(),
        rlp_trees.map(rlp_bytes),
        valid.flatmap(mutations),
    )
