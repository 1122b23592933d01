"""ristretto255 layer: RFC 9496's test vectors (appendix A.1-A.3) through libsodium, the
identity and non-canonical inputs made explicit, and the group and scalar laws."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pysodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.crypto._ristretto import (
    GENERATOR,
    GROUP_ORDER,
    IDENTITY,
    ZERO_SCALAR,
    RistrettoError,
    add,
    base_mul,
    from_uniform_bytes,
    hash_to_point,
    hash_to_scalar,
    is_canonical_point,
    is_canonical_scalar,
    mul,
    random_scalar,
    reduce_scalar,
    scalar_add,
    scalar_invert,
    scalar_mul,
    scalar_negate,
    scalar_sub,
    sub,
)
from medchain.types import MedchainError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc9496_ristretto255.json").read_text())
MULTIPLES = [bytes.fromhex(h) for h in VECTORS["generator_multiples"]["encodings"]]
INVALID = [bytes.fromhex(v["encoding"]) for v in VECTORS["invalid_encodings"]["vectors"]]
ONE_WAY = [
    (bytes.fromhex(v["input"]), bytes.fromhex(v["output"]), v.get("label"))
    for v in VECTORS["one_way_map"]["vectors"]
]

L = GROUP_ORDER
DOMAIN = b"medchain/test/v1\x00"

ints_mod_l = st.integers(min_value=0, max_value=L - 1)


def sc(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


# --- RFC 9496 appendix A -------------------------------------------------------------------


def test_vector_file_is_complete() -> None:
    assert len(MULTIPLES) == 16
    assert len(INVALID) == 29
    assert len(ONE_WAY) == 11


@pytest.mark.parametrize("k", range(16))
def test_a1_base_mul_gives_each_multiple(k: int) -> None:
    assert base_mul(sc(k)) == MULTIPLES[k]
    assert is_canonical_point(MULTIPLES[k])


def test_a1_repeated_addition_of_the_generator() -> None:
    assert MULTIPLES[1] == GENERATOR
    point = IDENTITY
    for k, expected in enumerate(MULTIPLES):
        assert point == expected, k
        assert mul(sc(k), GENERATOR) == expected
        point = add(point, GENERATOR)
    for k in range(15, 0, -1):
        point = sub(point, GENERATOR)
        assert point == MULTIPLES[k]


@pytest.mark.parametrize("encoding", INVALID, ids=lambda e: e.hex()[:12])
def test_a2_invalid_encodings_are_rejected(encoding: bytes) -> None:
    assert not is_canonical_point(encoding)
    with pytest.raises(RistrettoError):
        add(encoding, GENERATOR)
    with pytest.raises(RistrettoError):
        sub(GENERATOR, encoding)
    with pytest.raises(RistrettoError):
        mul(sc(1), encoding)
    with pytest.raises(RistrettoError):
        mul(ZERO_SCALAR, encoding)  # even when the product would be the identity


@pytest.mark.parametrize(("uniform", "expected", "label"), ONE_WAY)
def test_a3_element_derivation(uniform: bytes, expected: bytes, label: str | None) -> None:
    assert from_uniform_bytes(uniform) == expected
    if label is not None:  # the first seven inputs are SHA-512 of ristretto.group's labels
        assert hashlib.sha512(label.encode()).digest() == uniform


# --- identity and non-canonical inputs -----------------------------------------------------


def test_identity_is_a_valid_encoding_and_results_in_identity_are_returned() -> None:
    """libsodium accepts the identity on decoding but fails any scalar multiplication
    whose product is the identity; the layer returns IDENTITY for those."""
    assert is_canonical_point(IDENTITY)
    with pytest.raises(ValueError):
        pysodium.crypto_scalarmult_ristretto255_base(ZERO_SCALAR)
    with pytest.raises(ValueError):
        pysodium.crypto_scalarmult_ristretto255(sc(5), IDENTITY)
    assert base_mul(ZERO_SCALAR) == IDENTITY
    assert mul(ZERO_SCALAR, GENERATOR) == IDENTITY
    assert mul(sc(7), IDENTITY) == IDENTITY
    assert sub(MULTIPLES[3], MULTIPLES[3]) == IDENTITY
    assert add(IDENTITY, MULTIPLES[5]) == MULTIPLES[5]
    assert from_uniform_bytes(bytes(64)) == IDENTITY


def test_non_canonical_scalars_are_refused() -> None:
    """libsodium's scalar multiplication drops bit 255, so 2^255 + 1 would act as 1 there
    (not as (2^255 + 1) mod l): the layer refuses every scalar >= l instead."""
    big = (2**255 + 1).to_bytes(32, "little")
    assert pysodium.crypto_scalarmult_ristretto255(big, GENERATOR) == GENERATOR
    for bad in (L.to_bytes(32, "little"), big, b"\xff" * 32, sc(1)[:31], sc(1) + b"\x00"):
        assert not is_canonical_scalar(bad)
        with pytest.raises(RistrettoError):
            mul(bad, GENERATOR)
        with pytest.raises(RistrettoError):
            base_mul(bad)
        with pytest.raises(RistrettoError):
            scalar_add(bad, sc(1))
        with pytest.raises(RistrettoError):
            scalar_mul(sc(1), bad)
    assert is_canonical_scalar(sc(0))
    assert is_canonical_scalar(sc(L - 1))


def test_wrong_shapes_are_refused_before_reaching_libsodium() -> None:
    """pysodium hands is_valid_point's buffer to C unchecked: a short input must never
    get there."""
    for bad in (b"", GENERATOR[:31], GENERATOR + b"\x00", bytearray(GENERATOR), "e2f2"):
        assert not is_canonical_point(bad)  # type: ignore[arg-type]
        with pytest.raises(RistrettoError):
            add(bad, GENERATOR)  # type: ignore[arg-type]
        with pytest.raises(RistrettoError):
            mul(sc(1), bad)  # type: ignore[arg-type]
    with pytest.raises(RistrettoError):
        from_uniform_bytes(bytes(63))
    with pytest.raises(RistrettoError):
        reduce_scalar(bytes(32))


def test_errors_are_medchain_errors() -> None:
    with pytest.raises(MedchainError) as info:
        mul(sc(1), INVALID[0])
    assert info.value.code == "invalid_group_element"


# --- hashing ------------------------------------------------------------------------------


def test_hash_to_point_is_element_derivation_of_sha512() -> None:
    data = b"some data"
    expected = from_uniform_bytes(hashlib.sha512(DOMAIN + data).digest())
    assert hash_to_point(DOMAIN, data) == expected
    assert hash_to_point(b"medchain/other/v1\x00", data) != expected


def test_hash_to_scalar_frames_its_parts() -> None:
    def by_hand(*parts: bytes) -> int:
        framed = b"".join(len(p).to_bytes(8, "little") + p for p in parts)
        return int.from_bytes(hashlib.sha512(DOMAIN + framed).digest(), "little") % L

    assert hash_to_scalar(DOMAIN, b"ab", b"c") == sc(by_hand(b"ab", b"c"))
    assert hash_to_scalar(DOMAIN, b"ab", b"c") != hash_to_scalar(DOMAIN, b"a", b"bc")
    assert hash_to_scalar(DOMAIN) != hash_to_scalar(DOMAIN, b"")
    assert is_canonical_scalar(hash_to_scalar(DOMAIN, b"x"))


@pytest.mark.parametrize("domain", [b"", b"no-terminator", b"a\x00b\x00", b"a\x00\x00"])
def test_domain_tags_must_be_nul_terminated(domain: bytes) -> None:
    with pytest.raises(RistrettoError):
        hash_to_point(domain, b"x")
    with pytest.raises(RistrettoError):
        hash_to_scalar(domain, b"x")


@given(st.binary(min_size=64, max_size=64))
@settings(max_examples=50)
def test_reduce_scalar_is_the_integer_mod_l(data: bytes) -> None:
    assert reduce_scalar(data) == sc(int.from_bytes(data, "little"))


@given(st.binary(min_size=64, max_size=64))
@settings(max_examples=50)
def test_derived_elements_are_canonical(data: bytes) -> None:
    assert is_canonical_point(from_uniform_bytes(data))


def test_random_scalars_are_canonical_nonzero_and_fresh() -> None:
    scalars = {random_scalar() for _ in range(32)}
    assert len(scalars) == 32
    assert all(is_canonical_scalar(s) and s != ZERO_SCALAR for s in scalars)


# --- group and scalar laws ----------------------------------------------------------------


@given(ints_mod_l, ints_mod_l)
@settings(max_examples=40)
def test_scalar_arithmetic_matches_integers_mod_l(a: int, b: int) -> None:
    assert scalar_add(sc(a), sc(b)) == sc(a + b)
    assert scalar_sub(sc(a), sc(b)) == sc(a - b)
    assert scalar_mul(sc(a), sc(b)) == sc(a * b)
    assert scalar_negate(sc(a)) == sc(-a)


@given(ints_mod_l.filter(lambda a: a % L != 0))
@settings(max_examples=30)
def test_scalar_invert_matches_the_integer_inverse_mod_l(a: int) -> None:
    assert scalar_invert(sc(a)) == sc(pow(a, -1, L))


def test_scalar_invert_refuses_zero_and_non_canonical_scalars() -> None:
    with pytest.raises(RistrettoError, match="zero has no inverse"):
        scalar_invert(ZERO_SCALAR)
    with pytest.raises(RistrettoError, match="below the group order"):
        scalar_invert(L.to_bytes(32, "little"))


@given(ints_mod_l, ints_mod_l)
@settings(max_examples=30)
def test_multiplication_is_a_homomorphism(a: int, b: int) -> None:
    assert add(base_mul(sc(a)), base_mul(sc(b))) == base_mul(sc(a + b))
    assert sub(base_mul(sc(a)), base_mul(sc(b))) == base_mul(sc(a - b))
    assert mul(sc(a), base_mul(sc(b))) == base_mul(sc(a * b))


@given(ints_mod_l)
@settings(max_examples=20)
def test_the_group_order_annihilates(a: int) -> None:
    point = base_mul(sc(a))
    assert mul(sc(L - 1), point) == sub(IDENTITY, point)
    assert add(mul(sc(L - 1), point), point) == IDENTITY
