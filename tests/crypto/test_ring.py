"""bLSAG ring signatures: known answers for the key derivation, correctness for any ring
size and signer position, failure under every kind of tampering, linkability through the
key image only, and one test per rule `ring_verify` and `ring_sign` enforce."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.crypto import (
    MAX_RING_SIZE,
    RingError,
    RingSignature,
    _ring,
    is_ring_public_key,
    linked,
    ring_key_image,
    ring_public,
    ring_secret,
    ring_sign,
    ring_verify,
)
from medchain.crypto._ristretto import (
    GENERATOR,
    GROUP_ORDER,
    IDENTITY,
    base_mul,
    from_uniform_bytes,
    mul,
)
from medchain.types import MedchainError, decode, encode

L = GROUP_ORDER
MESSAGE = b"share record 42 with the registry"
INVALID_POINT = bytes.fromhex(
    json.loads((Path(__file__).parent / "vectors" / "rfc9496_ristretto255.json").read_text())[
        "invalid_encodings"
    ]["vectors"][6]["encoding"]
)

RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
"""RFC 8032 section 7.1 test 1's secret key, here as an account seed."""

KNOWN_ANSWERS = [
    # (seed, ring_secret, ring_public, key image), computed once and cross-checked below
    (
        RFC8032_SEED,
        "c30da9dc3f48c4265cad5921344ba34e5d0f36c6fba42cfddb3254b0baea4d0d",
        "903c56a6c06387765c20a52d659029a61d20139cbdb13f379926523f9ba04911",
        "426a584b3cb6aae0051fdcd917f04eabbaa6837f3e837e6d0d24caa6ada9e269",
    ),
    (
        bytes(range(32)),
        "ca0afeb351504b5eb617d21c9c9a465deb72efeb17d2e3a8fe69f9c652e65a0d",
        "ba1f90249f069dd59ea5a1518d8368a659206f3bb49a40944c117af81261db73",
        "202b096e4b3986a06db7baa71a6b0f4e807f33da877dba473ec59b90c45d2933",
    ),
]


@cache
def secret(i: int) -> bytes:
    return ring_secret(hashlib.sha256(b"ring test seed %d" % i).digest())


@cache
def public(i: int) -> bytes:
    return ring_public(secret(i))


def ring_of(n: int, offset: int = 0) -> list[bytes]:
    return [public(offset + i) for i in range(n)]


def sc(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def bump(scalar: bytes) -> bytes:
    return sc(int.from_bytes(scalar, "little") + 1)


@cache
def sample(n: int = 5, signer: int = 2) -> tuple[tuple[bytes, ...], RingSignature]:
    ring = tuple(ring_of(n))
    return ring, ring_sign(MESSAGE, ring, secret(signer))


# --- key derivation -----------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "x", "p", "image"), KNOWN_ANSWERS)
def test_key_derivation_known_answers(seed: bytes, x: str, p: str, image: str) -> None:
    assert ring_secret(seed).hex() == x
    assert ring_public(bytes.fromhex(x)).hex() == p
    assert ring_key_image(bytes.fromhex(x)).hex() == image


@pytest.mark.parametrize(("seed", "x", "p", "image"), KNOWN_ANSWERS)
def test_key_derivation_recomputed_from_the_primitives(
    seed: bytes, x: str, p: str, image: str
) -> None:
    digest = hashlib.sha512(b"medchain/ring-key/v1\x00" + seed).digest()
    assert int.from_bytes(digest, "little") % L == int.from_bytes(bytes.fromhex(x), "little")
    secret_ = bytes.fromhex(x)
    assert base_mul(secret_).hex() == p
    hp = from_uniform_bytes(hashlib.sha512(b"medchain/ring-hp/v1\x00" + bytes.fromhex(p)).digest())
    assert mul(secret_, hp).hex() == image


def test_ring_keys_are_independent_of_the_ed25519_key() -> None:
    """Same seed, different scalar: Ed25519 uses the clamped first half of SHA-512(seed)
    (RFC 8032 section 5.1.5); the ring key hashes the seed under its own tag."""
    h = bytearray(hashlib.sha512(RFC8032_SEED).digest()[:32])
    h[0] &= 0xF8
    h[31] = (h[31] & 0x7F) | 0x40
    ed25519_scalar = int.from_bytes(h, "little") % L
    assert int.from_bytes(ring_secret(RFC8032_SEED), "little") != ed25519_scalar
    assert is_ring_public_key(ring_public(ring_secret(RFC8032_SEED)))


def test_zero_ring_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seed reducing to 0 (probability 2^-252) would give the identity as public key."""
    monkeypatch.setattr(_ring, "reduce_scalar", lambda _: bytes(32))
    with pytest.raises(RingError, match="zero"):
        ring_secret(RFC8032_SEED)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "x" * 32, 32])
def test_ring_secret_needs_a_32_byte_seed(seed: object) -> None:
    with pytest.raises(RingError):
        ring_secret(seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [bytes(32), L.to_bytes(32, "little"), b"\xff" * 32, bytes(31)])
def test_invalid_secrets_are_refused(bad: bytes) -> None:
    for f in (ring_public, ring_key_image):
        with pytest.raises(RingError):
            f(bad)
    with pytest.raises(RingError):
        ring_sign(MESSAGE, ring_of(3), bad)


# --- correctness --------------------------------------------------------------------------


@given(st.data(), st.integers(min_value=1, max_value=12), st.binary(max_size=64))
@settings(max_examples=25, deadline=None)
def test_valid_for_any_ring_size_and_signer(data: st.DataObject, n: int, message: bytes) -> None:
    signer = data.draw(st.integers(min_value=0, max_value=n - 1), label="signer")
    offset = data.draw(st.integers(0, 20), label="offset")
    ring = ring_of(n, offset)
    x = secret(offset + signer)
    signature = ring_sign(message, ring, x)
    assert len(signature.responses) == n
    assert ring_verify(message, ring, signature)
    assert signature.key_image == ring_key_image(x)


def test_every_member_can_sign_for_the_same_message_and_ring() -> None:
    """Nothing in verification depends on the signer's position; only the key image
    (one per key, as intended) differs between members."""
    ring = ring_of(7)
    signatures = [ring_sign(MESSAGE, ring, secret(i)) for i in range(7)]
    assert all(ring_verify(MESSAGE, ring, s) for s in signatures)
    assert [s.key_image for s in signatures] == [ring_key_image(secret(i)) for i in range(7)]
    assert len({s.key_image for s in signatures}) == 7


def test_a_ring_of_one_verifies() -> None:
    """Sound but not anonymous: minimum sizes are the caller's policy."""
    signature = ring_sign(MESSAGE, [public(0)], secret(0))
    assert ring_verify(MESSAGE, [public(0)], signature)


def test_signing_is_randomised_but_the_key_image_is_not() -> None:
    ring = ring_of(4)
    a, b = ring_sign(MESSAGE, ring, secret(1)), ring_sign(MESSAGE, ring, secret(1))
    assert a.c1 != b.c1 and a.responses != b.responses
    assert a.key_image == b.key_image
    assert ring_verify(MESSAGE, ring, a) and ring_verify(MESSAGE, ring, b)


def test_a_ring_may_be_any_sequence() -> None:
    ring, signature = sample()
    assert ring_verify(MESSAGE, list(ring), signature)
    assert ring_verify(bytearray(MESSAGE), ring, signature)  # type: ignore[arg-type]
    assert ring_verify(MESSAGE, ring, ring_sign(MESSAGE, list(ring), secret(0)))


def test_nonces_survive_a_broken_random_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """With constant "random" bytes, nonces still differ per message (they also hash the
    secret and the transcript), so two responses never share a nonce under two challenges,
    which would reveal the secret."""
    monkeypatch.setattr("medchain.crypto._ring.secrets.token_bytes", lambda n: bytes(n))
    ring = ring_of(3)
    a = ring_sign(b"one", ring, secret(1))
    b = ring_sign(b"two", ring, secret(1))
    assert ring_verify(b"one", ring, a) and ring_verify(b"two", ring, b)
    assert not set(a.responses) & set(b.responses)
    assert ring_sign(b"one", ring, secret(1)) == a  # deterministic, like RFC 8032


def test_the_signature_survives_the_canonical_codec() -> None:
    ring, signature = sample()
    decoded = decode(RingSignature, encode(signature))
    assert decoded == signature
    assert ring_verify(MESSAGE, ring, decoded)


# --- tampering ----------------------------------------------------------------------------


def test_changed_message_fails() -> None:
    ring, signature = sample()
    assert not ring_verify(MESSAGE + b"!", ring, signature)
    assert not ring_verify(b"", ring, signature)


@pytest.mark.parametrize("index", range(5))
def test_changed_member_fails(index: int) -> None:
    ring, signature = sample()
    other = list(ring)
    other[index] = public(40)
    assert not ring_verify(MESSAGE, other, signature)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 4), (2, 3), (0, 4)])
def test_changed_ring_order_fails(i: int, j: int) -> None:
    ring, signature = sample()
    reordered = list(ring)
    reordered[i], reordered[j] = reordered[j], reordered[i]
    assert not ring_verify(MESSAGE, reordered, signature)


def test_dropped_or_added_member_fails() -> None:
    ring, signature = sample()
    assert not ring_verify(MESSAGE, ring[:-1], signature)
    assert not ring_verify(MESSAGE, [*ring, public(40)], signature)
    padded = replace(signature, responses=(*signature.responses, signature.responses[0]))
    assert not ring_verify(MESSAGE, [*ring, public(40)], padded)


def test_changed_key_image_fails() -> None:
    ring, signature = sample()
    for image in (ring_key_image(secret(0)), ring_key_image(secret(3)), GENERATOR):
        assert not ring_verify(MESSAGE, ring, replace(signature, key_image=image))


def test_changed_c1_fails() -> None:
    ring, signature = sample()
    assert not ring_verify(MESSAGE, ring, replace(signature, c1=bump(signature.c1)))
    assert not ring_verify(MESSAGE, ring, replace(signature, c1=signature.responses[0]))


@pytest.mark.parametrize("index", range(5))
def test_changed_response_fails(index: int) -> None:
    ring, signature = sample()
    responses = list(signature.responses)
    responses[index] = bump(responses[index])
    assert not ring_verify(MESSAGE, ring, replace(signature, responses=tuple(responses)))


def test_swapped_responses_fail() -> None:
    ring, signature = sample()
    r = signature.responses
    swapped = (r[1], r[0], *r[2:])
    assert not ring_verify(MESSAGE, ring, replace(signature, responses=swapped))


@given(st.binary(min_size=32, max_size=32), st.integers(0, 4), st.sampled_from(["c1", "r", "I"]))
@settings(max_examples=30, deadline=None)
def test_random_replacement_of_any_field_fails(junk: bytes, index: int, field: str) -> None:
    ring, signature = sample()
    if field == "c1":
        forged = replace(signature, c1=junk)
    elif field == "I":
        forged = replace(signature, key_image=junk)
    else:
        responses = list(signature.responses)
        responses[index] = junk
        forged = replace(signature, responses=tuple(responses))
    assert ring_verify(MESSAGE, ring, forged) == (forged == signature)


# --- linkability --------------------------------------------------------------------------


def test_one_key_links_across_rings_and_messages() -> None:
    a = ring_sign(b"first", [public(0), public(1), public(2)], secret(1))
    b = ring_sign(b"second", [public(1), public(7), public(8), public(9)], secret(1))
    assert linked(a, b)
    assert a.key_image == b.key_image == ring_key_image(secret(1))


@given(st.integers(0, 9), st.integers(0, 9), st.binary(max_size=16), st.binary(max_size=16))
@settings(max_examples=15, deadline=None)
def test_linked_exactly_when_the_key_is_the_same(i: int, j: int, m1: bytes, m2: bytes) -> None:
    a = ring_sign(m1, ring_of(10), secret(i))
    b = ring_sign(m2, ring_of(10)[::-1], secret(j))
    assert linked(a, b) == (i == j)


def test_the_key_image_alone_links() -> None:
    """Fresh randomness makes two signatures by one key share nothing else."""
    ring = ring_of(6)
    a, b = ring_sign(MESSAGE, ring, secret(2)), ring_sign(MESSAGE, ring, secret(2))
    assert a.c1 != b.c1
    assert not set(a.responses) & set(b.responses)
    assert linked(a, b)


# --- what ring_verify rejects -------------------------------------------------------------


def test_rejects_non_canonical_ring_member() -> None:
    ring, signature = sample()
    for bad in (INVALID_POINT, ring[0][:31], ring[0] + b"\x00", bytearray(ring[0])):
        assert not ring_verify(MESSAGE, [bad, *ring[1:]], signature)  # type: ignore[list-item]


def test_rejects_identity_ring_member() -> None:
    ring, signature = sample()
    assert not ring_verify(MESSAGE, [IDENTITY, *ring[1:]], signature)
    assert not is_ring_public_key(IDENTITY)


def test_rejects_duplicate_members() -> None:
    """A ring listing one key twice would overstate the anonymity set."""
    ring = [public(0), public(1), public(0)]
    forged = ring_sign(MESSAGE, ring[:2], secret(1))
    forged = replace(forged, responses=(*forged.responses, forged.responses[0]))
    assert not ring_verify(MESSAGE, ring, forged)


def test_rejects_empty_ring() -> None:
    assert not ring_verify(MESSAGE, [], RingSignature(ring_key_image(secret(0)), sc(1), ()))


def test_rejects_ring_larger_than_the_limit() -> None:
    ring = ring_of(6)
    signature = ring_sign(MESSAGE, ring, secret(0))
    assert ring_verify(MESSAGE, ring, signature, max_ring_size=6)
    assert not ring_verify(MESSAGE, ring, signature, max_ring_size=5)


def test_default_limit_is_max_ring_size() -> None:
    ring = ring_of(MAX_RING_SIZE + 1)
    signature = ring_sign(MESSAGE, ring, secret(0), max_ring_size=MAX_RING_SIZE + 1)
    assert ring_verify(MESSAGE, ring, signature, max_ring_size=MAX_RING_SIZE + 1)
    assert not ring_verify(MESSAGE, ring, signature)


def test_rejects_response_count_other_than_ring_size() -> None:
    ring, signature = sample()
    for responses in (signature.responses[:-1], (*signature.responses, sc(3)), ()):
        assert not ring_verify(MESSAGE, ring, replace(signature, responses=responses))


def test_rejects_identity_or_non_canonical_key_image() -> None:
    ring, signature = sample()
    for image in (IDENTITY, INVALID_POINT, signature.key_image[:31], b""):
        assert not ring_verify(MESSAGE, ring, replace(signature, key_image=image))


def test_rejects_non_canonical_scalars() -> None:
    """c + l and r + l name the same scalars: accepting them would make signatures
    malleable (a second valid encoding of every signature)."""
    ring, signature = sample()

    def plus_l(scalar: bytes) -> bytes | None:
        value = int.from_bytes(scalar, "little") + L
        return value.to_bytes(32, "little") if value < 2**256 else None

    c_alias = plus_l(signature.c1)
    if c_alias is not None:
        assert not ring_verify(MESSAGE, ring, replace(signature, c1=c_alias))
    for i, r in enumerate(signature.responses):
        alias = plus_l(r)
        if alias is not None:
            responses = list(signature.responses)
            responses[i] = alias
            assert not ring_verify(MESSAGE, ring, replace(signature, responses=tuple(responses)))
    assert not ring_verify(MESSAGE, ring, replace(signature, c1=b"\xff" * 32))
    assert not ring_verify(MESSAGE, ring, replace(signature, c1=signature.c1[:31]))


def test_zero_scalars_are_handled_not_raised() -> None:
    """Zero challenge and responses make libsodium fail a multiplication (identity
    product); verification must just say no."""
    ring, signature = sample()
    zeros = RingSignature(signature.key_image, sc(0), (sc(0),) * 5)
    assert not ring_verify(MESSAGE, ring, zeros)


_GOOD = object()
"""Stands for the valid message, ring or signature in the garbage table below."""


@pytest.mark.parametrize(
    ("message", "ring", "signature"),
    [
        ("text", _GOOD, _GOOD),
        (12, _GOOD, _GOOD),
        (None, _GOOD, _GOOD),
        (_GOOD, None, _GOOD),
        (_GOOD, "not a ring", _GOOD),
        (_GOOD, b"\x00" * 32, _GOOD),
        (_GOOD, [1, 2, 3, 4, 5], _GOOD),
        (_GOOD, [None] * 5, _GOOD),
        (_GOOD, range(5), _GOOD),
        (_GOOD, _GOOD, None),
        (_GOOD, _GOOD, "signature"),
        (_GOOD, _GOOD, (b"", b"", ())),
    ],
)
def test_garbage_never_raises(message: object, ring: object, signature: object) -> None:
    good_ring, good_signature = sample()
    message = MESSAGE if message is _GOOD else message
    ring = good_ring if ring is _GOOD else ring
    signature = good_signature if signature is _GOOD else signature
    assert ring_verify(message, ring, signature) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "signature",
    [
        RingSignature(None, None, None),  # type: ignore[arg-type]
        RingSignature(b"", b"", ()),
        RingSignature(IDENTITY, sc(1), [sc(1)] * 5),  # type: ignore[arg-type]
        RingSignature(GENERATOR, sc(1), (1, 2, 3, 4, 5)),  # type: ignore[arg-type]
        RingSignature(GENERATOR, 7, (sc(1),) * 5),  # type: ignore[arg-type]
    ],
)
def test_malformed_signatures_never_raise(signature: RingSignature) -> None:
    ring, _ = sample()
    assert ring_verify(MESSAGE, ring, signature) is False


@given(
    st.binary(max_size=40),
    st.binary(max_size=40),
    st.lists(st.binary(min_size=31, max_size=33), max_size=6),
)
@settings(max_examples=40, deadline=None)
def test_random_signatures_never_raise(image: bytes, c1: bytes, responses: list[bytes]) -> None:
    ring, _ = sample()
    assert not ring_verify(MESSAGE, ring, RingSignature(image, c1, tuple(responses)))


# --- what ring_sign refuses ---------------------------------------------------------------


def _sign_error(ring: object, x: bytes | None = None, **kwargs: int) -> RingError:
    with pytest.raises(RingError) as info:
        ring_sign(MESSAGE, ring, secret(0) if x is None else x, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, MedchainError)
    assert info.value.code == "invalid_ring"
    return info.value


def test_sign_refuses_a_ring_without_the_signer() -> None:
    assert "does not contain" in _sign_error(ring_of(4, offset=1)).message


def test_sign_refuses_duplicates() -> None:
    assert "once" in _sign_error([public(0), public(1), public(1)]).message


def test_sign_refuses_too_large_a_ring() -> None:
    assert "limit of 3" in _sign_error(ring_of(4), max_ring_size=3).message
    assert f"limit of {MAX_RING_SIZE}" in _sign_error(ring_of(MAX_RING_SIZE + 1)).message


def test_sign_refuses_empty_and_malformed_rings() -> None:
    assert "at least one" in _sign_error([]).message
    assert "member 1" in _sign_error([public(0), INVALID_POINT]).message
    assert "member 2" in _sign_error([public(0), public(1), IDENTITY]).message
    _sign_error(public(0))
    _sign_error("ring")


def test_sign_refuses_a_non_bytes_message() -> None:
    with pytest.raises(RingError):
        ring_sign("text", ring_of(2), secret(0))  # type: ignore[arg-type]
