"""ristretto255 (RFC 9496): a prime-order group of 32-byte elements, as plain bytes.

Why ristretto255: protocols written for a prime-order group (ring signatures, key images)
are unsound on edwards25519 itself, whose cofactor 8 lets a torsion component change a
point without changing what a signature checks. ristretto255 has no such points, and each
element has exactly one encoding, so comparing bytes compares elements.

All arithmetic is libsodium's (through pysodium); this module pins down the inputs it takes
and what it does at the edges, which libsodium 1.0.18 reports only as a bare failure
(pysodium raises a bare ValueError):

- Decoding (`crypto_core_ristretto255_is_valid_point`, and inside every operation) is
  RFC 9496 section 4.3.1: it refuses s >= p, a negative s, a non-square x^2, a negative
  x*y and y = 0 (s = -1), and accepts the identity, whose encoding is 32 zero bytes.
  pysodium passes that function's buffer on without a length check, so lengths are
  checked here first.
- `crypto_scalarmult_ristretto255` and `_base` fail whenever the product is the identity
  (a zero scalar, or the identity as the point). `mul` and `base_mul` return IDENTITY
  instead and keep errors for inputs that do not decode.
- Both scalar multiplications clear bit 255 of the scalar, and the scalar functions
  assume reduced inputs, so every scalar taken here must be canonical (below the group
  order l); anything else raises rather than silently meaning another scalar.
- `crypto_core_ristretto255_add` and `_sub` return the identity like any other result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeAlias

import pysodium

from medchain.types import MedchainError

Point: TypeAlias = bytes
"""The canonical 32-byte encoding of a group element."""

Scalar: TypeAlias = bytes
"""An integer below the group order, 32 bytes little-endian."""

POINT_SIZE = 32
SCALAR_SIZE = 32
UNIFORM_SIZE = 64
"""Bytes taken by element derivation (RFC 9496 section 4.3.4) and by wide reduction."""

GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
IDENTITY: Point = bytes(POINT_SIZE)
GENERATOR: Point = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
ZERO_SCALAR: Scalar = bytes(SCALAR_SIZE)


class RistrettoError(MedchainError):
    """An input that is not a group element or scalar: a wrong length, a non-canonical
    encoding, or a domain tag that is not NUL-terminated. A bug in the caller."""

    code = "invalid_group_element"


def is_canonical_point(data: bytes) -> bool:
    """Whether `data` is the canonical encoding of an element; the identity counts."""
    return (
        type(data) is bytes
        and len(data) == POINT_SIZE
        and pysodium.crypto_core_ristretto255_is_valid_point(data)
    )


def is_canonical_scalar(data: bytes) -> bool:
    """Whether `data` is 32 bytes, little-endian, below the group order."""
    return (
        type(data) is bytes
        and len(data) == SCALAR_SIZE
        and int.from_bytes(data, "little") < GROUP_ORDER
    )


def from_uniform_bytes(data: bytes) -> Point:
    """RFC 9496 section 4.3.4 element derivation: 64 uniform bytes to an element, with
    no known discrete logarithm. (All-zero input gives the identity.)"""
    if type(data) is not bytes or len(data) != UNIFORM_SIZE:
        raise RistrettoError(f"element derivation takes {UNIFORM_SIZE} bytes")
    return bytes(pysodium.crypto_core_ristretto255_from_hash(data))


def hash_to_point(domain: bytes, data: bytes) -> Point:
    """from_uniform_bytes(SHA-512(domain || data)). `domain` must end in its only NUL
    byte, so no tag is a prefix of another and separate uses never share inputs."""
    _check_domain(domain)
    return from_uniform_bytes(hashlib.sha512(domain + data).digest())


def hash_to_scalar(domain: bytes, *parts: bytes) -> Scalar:
    """SHA-512(domain || len(part) || part || ...) reduced mod l, lengths 8 bytes
    little-endian, so distinct part lists never hash the same bytes."""
    _check_domain(domain)
    h = hashlib.sha512(domain)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return reduce_scalar(h.digest())


def reduce_scalar(data: bytes) -> Scalar:
    """A 64-byte integer (little-endian) mod l: uniform input gives a scalar within
    2^-259 of uniform."""
    if type(data) is not bytes or len(data) != UNIFORM_SIZE:
        raise RistrettoError(f"wide reduction takes {UNIFORM_SIZE} bytes")
    return bytes(pysodium.crypto_core_ristretto255_scalar_reduce(data))


def random_scalar() -> Scalar:
    """A uniform nonzero scalar from libsodium's generator."""
    while True:
        scalar = bytes(pysodium.crypto_core_ristretto255_scalar_random())
        if scalar != ZERO_SCALAR:  # probability 2^-252: loop, do not return 0
            return scalar


def base_mul(scalar: Scalar) -> Point:
    """scalar * GENERATOR; IDENTITY for the zero scalar."""
    _check_scalar(scalar)
    try:
        return bytes(pysodium.crypto_scalarmult_ristretto255_base(scalar))
    except ValueError:  # libsodium refuses an identity result; only 0 * B is one
        return IDENTITY


def mul(scalar: Scalar, point: Point) -> Point:
    """scalar * point; IDENTITY when the product is (zero scalar or identity point)."""
    _check_scalar(scalar)
    _check_point_size(point)
    try:
        return bytes(pysodium.crypto_scalarmult_ristretto255(scalar, point))
    except ValueError:
        pass  # either the point does not decode or the product is the identity
    if not pysodium.crypto_core_ristretto255_is_valid_point(point):
        raise RistrettoError("not the canonical encoding of a ristretto255 element")
    return IDENTITY  # the group has prime order: n * P = 0 only for n = 0 or P = 0


def add(p: Point, q: Point) -> Point:
    """p + q."""
    return _combine(pysodium.crypto_core_ristretto255_add, p, q)


def sub(p: Point, q: Point) -> Point:
    """p - q."""
    return _combine(pysodium.crypto_core_ristretto255_sub, p, q)


def _combine(operation: Callable[[bytes, bytes], bytes], p: Point, q: Point) -> Point:
    _check_point_size(p)
    _check_point_size(q)
    try:
        return bytes(operation(p, q))
    except ValueError:
        raise RistrettoError("not the canonical encoding of a ristretto255 element") from None


def scalar_add(a: Scalar, b: Scalar) -> Scalar:
    """a + b mod l."""
    _check_scalar(a)
    _check_scalar(b)
    return bytes(pysodium.crypto_core_ristretto255_scalar_add(a, b))


def scalar_sub(a: Scalar, b: Scalar) -> Scalar:
    """a - b mod l."""
    _check_scalar(a)
    _check_scalar(b)
    return bytes(pysodium.crypto_core_ristretto255_scalar_sub(a, b))


def scalar_mul(a: Scalar, b: Scalar) -> Scalar:
    """a * b mod l."""
    _check_scalar(a)
    _check_scalar(b)
    return bytes(pysodium.crypto_core_ristretto255_scalar_mul(a, b))


def scalar_negate(a: Scalar) -> Scalar:
    """-a mod l."""
    _check_scalar(a)
    return bytes(pysodium.crypto_core_ristretto255_scalar_negate(a))


def scalar_invert(a: Scalar) -> Scalar:
    """1/a mod l. Zero has no inverse (libsodium reports only a bare failure for it)."""
    _check_scalar(a)
    if a == ZERO_SCALAR:
        raise RistrettoError("zero has no inverse modulo the group order")
    return bytes(pysodium.crypto_core_ristretto255_scalar_invert(a))


def _check_scalar(scalar: Scalar) -> None:
    if not is_canonical_scalar(scalar):
        raise RistrettoError(
            f"a scalar is {SCALAR_SIZE} bytes, little-endian, below the group order"
        )


def _check_point_size(point: Point) -> None:
    """Decoding itself is libsodium's, inside each operation; only the length and type
    need checking before ctypes hands the buffer over."""
    if type(point) is not bytes or len(point) != POINT_SIZE:
        raise RistrettoError(f"a ristretto255 element is encoded in {POINT_SIZE} bytes")


def _check_domain(domain: bytes) -> None:
    if type(domain) is not bytes or not domain.endswith(b"\x00") or domain.count(0) != 1:
        raise RistrettoError("a domain tag is bytes ending in its only NUL byte")
