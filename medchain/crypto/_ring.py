"""Linkable ring signatures: bLSAG (Back's linkable spontaneous anonymous group signature,
"Zero to Monero" 2nd ed. section 3.4, the CryptoNote scheme) over ristretto255.

Why: an account proves that one of the n public keys in a ring signed a message without
saying which (paper 002: sharing medical data without naming the patient), and every
signature by one key carries the same key image I = x * Hp(P), so a second use of a key is
visible to everyone while the key itself stays hidden. On ristretto255, a prime-order group,
a key image has no torsion variants: one key, one image.

Ring keys are derived from the account's Ed25519 seed, so no extra secret is stored, under
their own domain tag, so they are independent of the Ed25519 key (and differ from it: a
ring is built from published ring public keys, not account keys).

The challenge hashes a transcript of a domain tag, the message, the whole ring in order and
the key image, so a signature holds only for that message and that ring. Signing and
verifying cost four scalar multiplications per member; MAX_RING_SIZE bounds what a
verifier will spend on one signature.

A ring of one verifies (the scheme is sound for any n >= 1) but hides nothing: callers set
their own minimum anonymity (e.g. n >= 2, or more) on top of `ring_verify`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from medchain.crypto._ristretto import (
    IDENTITY,
    SCALAR_SIZE,
    ZERO_SCALAR,
    Point,
    Scalar,
    add,
    base_mul,
    hash_to_point,
    hash_to_scalar,
    is_canonical_point,
    is_canonical_scalar,
    mul,
    reduce_scalar,
    scalar_mul,
    scalar_sub,
)
from medchain.types import MedchainError

MAX_RING_SIZE = 64
"""Default bound on a ring: verification costs about 0.2 ms per member."""

RING_SEED_SIZE = 32

_KEY_TAG = b"medchain/ring-key/v1\x00"
_HP_TAG = b"medchain/ring-hp/v1\x00"
_TRANSCRIPT_TAG = b"medchain/ring-transcript/v1\x00"
_CHALLENGE_TAG = b"medchain/ring-challenge/v1\x00"
_NONCE_SEED_TAG = b"medchain/ring-nonce-seed/v1\x00"
_NONCE_TAG = b"medchain/ring-nonce/v1\x00"


class RingError(MedchainError):
    """Misuse by the signer: a secret or seed of the wrong shape, a ring that is empty,
    too large, has duplicates or invalid members, or does not hold the signer's key.
    Verification never raises this; it answers False."""

    code = "invalid_ring"


@dataclass(frozen=True, slots=True)
class RingSignature:
    """A bLSAG signature: the key image, the first challenge, one response per member.
    Plain bytes so `medchain.types.encode` serialises it; 32 * (n + 2) bytes of content."""

    key_image: bytes
    c1: bytes
    responses: tuple[bytes, ...]


def ring_secret(seed: bytes) -> bytes:
    """The ring secret scalar of an Ed25519 seed: SHA-512(tag || seed) mod l."""
    if not isinstance(seed, bytes | bytearray) or len(seed) != RING_SEED_SIZE:
        raise RingError(f"a ring key is derived from a {RING_SEED_SIZE}-byte Ed25519 seed")
    secret = reduce_scalar(hashlib.sha512(_KEY_TAG + bytes(seed)).digest())
    if secret == ZERO_SCALAR:  # probability 2^-252, but a zero key is everyone's key
        raise RingError("this seed derives the zero scalar, which is not a usable key")
    return secret


def ring_public(secret: bytes) -> bytes:
    """The public ring key of a secret: secret * G."""
    return base_mul(_check_secret(secret))


def ring_key_image(secret: bytes) -> bytes:
    """The key image x * Hp(x * G) that every signature by this secret carries."""
    x = _check_secret(secret)
    return mul(x, _hp(base_mul(x)))


def is_ring_public_key(data: bytes) -> bool:
    """Whether `data` can be a ring member: a canonical ristretto255 element other than the
    identity (whose secret would be 0, so it is nobody's key). Check keys on registration
    with this, as `ring_verify` refuses rings holding anything else."""
    return _is_member_point(data)


def ring_sign(
    message: bytes,
    ring: Sequence[bytes],
    secret: bytes,
    *,
    max_ring_size: int = MAX_RING_SIZE,
) -> RingSignature:
    """Sign `message` as an anonymous member of `ring`, which must hold ring_public(secret).

    The nonces are hedged: derived from the secret, the transcript and 32 fresh random
    bytes, so even a repeating random generator cannot reuse a nonce across messages
    (two responses with one nonce and different challenges reveal the secret)."""
    if not isinstance(message, bytes | bytearray):
        raise RingError("a ring signature signs bytes")
    x = _check_secret(secret)
    members = _check_ring(ring, max_ring_size)
    public = base_mul(x)
    try:
        signer = members.index(public)
    except ValueError:
        raise RingError("the ring does not contain the signer's public ring key") from None

    n = len(members)
    image = mul(x, _hp(public))
    transcript = _transcript(bytes(message), members, image)
    fresh = secrets.token_bytes(32)
    nonce_seed = hashlib.sha512(_NONCE_SEED_TAG + x + transcript + fresh).digest()
    responses = [
        hash_to_scalar(_NONCE_TAG, nonce_seed, i.to_bytes(8, "little")) for i in range(n + 1)
    ]
    alpha = responses.pop()  # index n: the signer's commitment nonce

    challenges = [ZERO_SCALAR] * n
    c = _challenge(transcript, base_mul(alpha), mul(alpha, _hp(public)))
    for step in range(1, n):
        i = (signer + step) % n
        challenges[i] = c
        c = _challenge(transcript, *_commitments(members[i], image, responses[i], c))
    challenges[signer] = c
    responses[signer] = scalar_sub(alpha, scalar_mul(c, x))
    return RingSignature(image, challenges[0], tuple(responses))


def ring_verify(
    message: bytes,
    ring: Sequence[bytes],
    signature: RingSignature,
    max_ring_size: int = MAX_RING_SIZE,
) -> bool:
    """Whether `signature` is a valid signature of `message` by a member of `ring`.

    Never raises. Rejects a ring that is empty, larger than `max_ring_size`, has
    duplicate members or members that are not canonical encodings or are the identity; a
    key image that is not a canonical non-identity element; challenge or responses that
    are not canonical scalars; a response count other than the ring size."""
    if not isinstance(message, bytes | bytearray) or not isinstance(signature, RingSignature):
        return False
    members = _ring_members(ring, max_ring_size)
    image, c1, responses = signature.key_image, signature.c1, signature.responses
    if (
        members is None
        or not isinstance(responses, tuple)
        or len(responses) != len(members)
        or not _is_member_point(image)
        or not is_canonical_scalar(c1)
        or not all(is_canonical_scalar(r) for r in responses)
    ):
        return False
    transcript = _transcript(bytes(message), members, image)
    c = c1
    for member, response in zip(members, responses, strict=True):
        c = _challenge(transcript, *_commitments(member, image, response, c))
    return c == c1


def linked(a: RingSignature, b: RingSignature) -> bool:
    """Whether two signatures come from the same key (the same key image), whatever their
    rings and messages. Only meaningful for signatures that `ring_verify` accepted."""
    return a.key_image == b.key_image


def _commitments(member: Point, image: Point, response: Scalar, c: Scalar) -> tuple[Point, Point]:
    """L = r * G + c * P and R = r * Hp(P) + c * I, which the challenge chain hashes."""
    left = add(base_mul(response), mul(c, member))
    right = add(mul(response, _hp(member)), mul(c, image))
    return left, right


def _challenge(transcript: bytes, left: Point, right: Point) -> Scalar:
    return hash_to_scalar(_CHALLENGE_TAG, transcript, left, right)


def _transcript(message: bytes, members: tuple[bytes, ...], image: Point) -> bytes:
    """SHA-512 of everything a challenge binds besides the commitments, hashed once per
    signature instead of once per member. Members are 32 bytes each: the count frames them."""
    h = hashlib.sha512(_TRANSCRIPT_TAG)
    h.update(len(message).to_bytes(8, "little"))
    h.update(message)
    h.update(len(members).to_bytes(8, "little"))
    for member in members:
        h.update(member)
    h.update(image)
    return h.digest()


@lru_cache(maxsize=4096)
def _hp(public_key: bytes) -> Point:
    """Hp(P), a point with no known discrete log; deterministic, so cached per key (a ring
    member usually appears in many rings)."""
    return hash_to_point(_HP_TAG, public_key)


def _is_member_point(point: object) -> bool:
    """A canonical element other than the identity: the identity is nobody's key (its
    secret would be 0) and as a key image it would link nothing."""
    return isinstance(point, bytes) and point != IDENTITY and is_canonical_point(point)


def _ring_members(ring: object, max_ring_size: int) -> tuple[bytes, ...] | None:
    """The ring as a tuple, or None if it breaks a rule (see `ring_verify`)."""
    if not isinstance(ring, Sequence) or isinstance(ring, bytes | bytearray | str):
        return None
    if not 1 <= len(ring) <= max_ring_size:
        return None
    members = tuple(ring)
    if not all(_is_member_point(m) for m in members) or len(set(members)) != len(members):
        return None
    return members


def _check_ring(ring: Sequence[bytes], max_ring_size: int) -> tuple[bytes, ...]:
    """`_ring_members` for the signer, with a reason for each refusal."""
    if not isinstance(ring, Sequence) or isinstance(ring, bytes | bytearray | str):
        raise RingError("a ring is a sequence of public ring keys")
    if not ring:
        raise RingError("a ring needs at least one member")
    if len(ring) > max_ring_size:
        raise RingError(f"a ring of {len(ring)} members exceeds the limit of {max_ring_size}")
    members = tuple(ring)
    for i, member in enumerate(members):
        if not _is_member_point(member):
            raise RingError(
                f"ring member {i} is not a public ring key (a canonical, non-identity "
                "ristretto255 element)"
            )
    if len(set(members)) != len(members):
        raise RingError("a ring lists each public key once")
    return members


def _check_secret(secret: bytes) -> Scalar:
    if not is_canonical_scalar(secret) or secret == ZERO_SCALAR:
        raise RingError(
            f"a ring secret is a nonzero {SCALAR_SIZE}-byte scalar below the group order "
            "(derive it with ring_secret)"
        )
    return secret
