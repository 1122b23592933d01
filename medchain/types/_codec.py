"""Canonical binary encoding of frozen dataclasses, on top of RLP.

Every object has exactly one encoding: fields are written in declaration order as an
RLP list, integers big-endian without leading zeros (unsigned only), strings UTF-8,
booleans 0/1, tuples as lists, nested dataclasses as nested lists. Decoding is
strict: a non-canonical integer, a trailing byte or a wrong shape raises DecodeError,
so the same object gives the same bytes on every machine and bytes decode to at
most one object.

Bytes come from peers and clients, so decoding never recurses further than the
expected type nests: lists nested deeper than that are refused by an iterative scan
before the RLP library (which recurses once per level) sees them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Hashable
from functools import cache
from typing import Any, TypeVar

import rlp

from medchain.types._errors import DecodeError

T = TypeVar("T")

_ToRlp = Callable[[Any], Any]
_FromRlp = Callable[[Any], Any]


def _int_to_rlp(value: int) -> bytes:
    if type(value) is not int or value < 0:
        raise ValueError(f"canonical integers are unsigned ints, got {value!r}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""


def _int_from_rlp(item: Any) -> int:
    if not isinstance(item, bytes):
        raise DecodeError("expected an integer, found a list")
    if item[:1] == b"\x00":
        raise DecodeError("integer with a leading zero byte is not canonical")
    return int.from_bytes(item, "big")


def _bool_from_rlp(item: Any) -> bool:
    value = _int_from_rlp(item)
    if value > 1:
        raise DecodeError("boolean must be 0 or 1")
    return value == 1


def _bytes_from_rlp(item: Any) -> bytes:
    if not isinstance(item, bytes):
        raise DecodeError("expected bytes, found a list")
    return item


def _str_from_rlp(item: Any) -> str:
    try:
        return _bytes_from_rlp(item).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("string is not valid UTF-8") from exc


@cache
def _converters(tp: Any) -> tuple[_ToRlp, _FromRlp]:
    """Build the (to_rlp, from_rlp) pair for one annotated type; cached per type."""
    if tp is int:
        return _int_to_rlp, _int_from_rlp
    if tp is bool:
        return (lambda v: b"\x01" if v else b""), _bool_from_rlp
    if tp is bytes:
        return (lambda v: bytes(v)), _bytes_from_rlp
    if tp is str:
        return (lambda v: v.encode("utf-8")), _str_from_rlp
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_converters(tp)
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"only homogeneous tuple[X, ...] is encodable, not {tp}")
        to_item, from_item = _converters(args[0])

        def list_from(item: Any) -> tuple[Any, ...]:
            if not isinstance(item, list):
                raise DecodeError("expected a list")
            return tuple(from_item(x) for x in item)

        return (lambda v: [to_item(x) for x in v]), list_from
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_converters(tp)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"optional/union fields are not canonical; use a sentinel: {tp}")
    raise TypeError(f"type {tp!r} has no canonical encoding")


def _enum_converters(tp: type[enum.Enum]) -> tuple[_ToRlp, _FromRlp]:
    sample = next(iter(tp)).value
    inner_to, inner_from = _converters(_hashable(type(sample)))

    def from_rlp(item: Any) -> enum.Enum:
        raw = inner_from(item)
        try:
            return tp(raw)
        except ValueError as exc:
            raise DecodeError(f"{raw!r} is not a valid {tp.__name__}") from exc

    return (lambda v: inner_to(v.value)), from_rlp


def _dataclass_converters(cls: type[Any]) -> tuple[_ToRlp, _FromRlp]:
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    convs = [_converters(_hashable(hints[name])) for name in fields]
    pairs = list(zip(fields, convs, strict=True))
    width = len(fields)
    caches_encoding = isinstance(getattr(cls, "encoded", None), functools.cached_property)

    def to_rlp(obj: Any) -> Any:
        if caches_encoding:  # a transaction inside a block: splice its cached bytes
            cached = obj.__dict__.get("encoded")
            if cached is not None:
                return _Encoded(cached)
        return [conv[0](getattr(obj, name)) for name, conv in pairs]

    def from_rlp(item: Any) -> Any:
        if not isinstance(item, list) or len(item) != width:
            raise DecodeError(f"expected a list of {width} fields for {cls.__name__}")
        return cls(*[conv[1](x) for (_, conv), x in zip(pairs, item, strict=True)])

    return to_rlp, from_rlp


@cache
def nesting_depth(tp: Any) -> int:
    """How deeply the encoding of `tp` nests lists: 0 for scalars, one more for each
    tuple or dataclass around them. Canonical types are not recursive, so this is
    finite, and no valid encoding of `tp` nests deeper."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = dataclasses.fields(tp)
        return 1 + max((nesting_depth(_hashable(hints[f.name])) for f in fields), default=0)
    if typing.get_origin(tp) is tuple:
        return 1 + nesting_depth(_hashable(typing.get_args(tp)[0]))
    return 0


def check_nesting(data: bytes, max_depth: int) -> None:
    """Raise DecodeError if the RLP items in `data` nest lists deeper than `max_depth`.

    Iterative, one step per list header and per string (whose bytes are skipped, not
    read), so a hostile input cannot drive recursion or quadratic work. It reads
    only the headers' lengths; everything else about the bytes (bounds, canonical
    form) is left to the decoder, and a malformed length can only make the scan count
    deeper, never shallower."""
    ends: list[int] = []
    pos, size = 0, len(data)
    while pos < size:
        while ends and pos >= ends[-1]:
            ends.pop()
        prefix = data[pos]
        if prefix < 0x80:
            pos += 1
            continue
        if prefix < 0xC0:
            header, length = _item_length(data, pos, prefix, 0x80)
            pos += header + length
            continue
        if len(ends) >= max_depth:
            raise DecodeError(f"lists nested deeper than the {max_depth} levels this type has")
        header, length = _item_length(data, pos, prefix, 0xC0)
        ends.append(pos + header + length)
        pos += header


def _item_length(data: bytes, pos: int, prefix: int, offset: int) -> tuple[int, int]:
    """(header size, payload length) of the RLP item whose prefix byte is at `pos`."""
    short = prefix - offset
    if short < 56:
        return 1, short
    width = short - 55
    return 1 + width, int.from_bytes(data[pos + 1 : pos + 1 + width], "big")


def _hashable(tp: Any) -> Hashable:
    """Types are hashable; this only tells the type checker so for the cache key."""
    return typing.cast(Hashable, tp)


class _Encoded(bytes):
    """An item already in canonical RLP (an object's cached `encoded` bytes)."""


def rlp_bytes(item: Any) -> bytes:
    """RLP of bytes and nested lists of bytes (already converted, so no type inference).

    Written out because the library's encoder infers a serializer for every item,
    which cost more than verifying a signature; `rlp.decode` still does all decoding
    and a property test holds this equal to `rlp.encode`."""
    if isinstance(item, bytes):
        if type(item) is _Encoded:
            return item
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _length_prefix(len(item), 0x80) + item
    payload = b"".join([rlp_bytes(x) for x in item])
    return _length_prefix(len(payload), 0xC0) + payload


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def encode(obj: Any, as_type: Any = None) -> bytes:
    """Return the canonical bytes of a dataclass instance, or of `obj` taken as
    `as_type`: a sequence of blobs as `tuple[bytes, ...]` is an RLP list of byte
    strings, which `decode(tuple[bytes, ...], data)` reads back. A bare tuple or list
    has no type of its own to encode by, so it needs `as_type`."""
    to_rlp, _ = _converters(_hashable(type(obj) if as_type is None else as_type))
    data = rlp_bytes(to_rlp(obj))
    return data if type(data) is bytes else bytes(data)


def read_rlp(data: bytes) -> Any:
    """What `rlp.decode(data, strict=True)` gives (nested lists of bytes), with the
    same canonical-form checks (pyrlp's own length-prefix reader), but in time linear
    in the size: pyrlp re-encodes every list as it decodes it, appending each item to
    a growing bytes object, which is quadratic in a list's length (a 4 MiB snapshot
    chunk of 60,000 entries took seconds). The depth is bounded by `check_nesting`
    before this runs."""
    try:
        item, end = _consume_item(data, 0)
    except IndexError as exc:
        raise rlp.exceptions.DecodingError("RLP string too short", data) from exc
    if end != len(data):
        raise rlp.exceptions.DecodingError("RLP string ends with superfluous bytes", data)
    return item


def _consume_item(data: bytes, position: int) -> tuple[Any, int]:
    _, kind, length, start = rlp.codec.consume_length_prefix(data, position)
    end = start + length
    if end > len(data):
        raise rlp.exceptions.DecodingError("RLP string too short", data)
    if kind is bytes:
        return data[start:end], end
    items = []
    position = start
    while position < end:
        item, position = _consume_item(data, position)
        items.append(item)
    if position != end:
        raise rlp.exceptions.DecodingError("List length prefix announced a too small length", data)
    return items, end


def decode(cls: type[T], data: bytes) -> T:
    """Parse canonical bytes into `cls`; anything else raises DecodeError."""
    _, from_rlp = _converters(_hashable(cls))
    data = bytes(data)
    check_nesting(data, nesting_depth(_hashable(cls)))
    try:
        item = read_rlp(data)
    except rlp.exceptions.DecodingError as exc:
        raise DecodeError(f"not a canonical encoding: {exc}") from exc
    try:
        result: T = from_rlp(item)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"invalid {_type_name(cls)}: {exc}") from exc
    return result


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)
