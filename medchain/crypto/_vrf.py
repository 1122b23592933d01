"""Verifiable random function: ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03).

Why a VRF: its output `beta` is a 64-byte value that only the key holder can compute for
an input `alpha`, that anyone holding the public key can check against the 80-byte proof,
and that is unique per (key, alpha), so neither the holder nor anyone else can grind it.
The key is the account's Ed25519 signing seed (RFC 9381 takes the secret scalar and public
key from RFC 8032), so an account's signing public key is also its VRF public key.

All group arithmetic is libsodium's (PyNaCl's `nacl.bindings`); this module only sequences
it as RFC 9381 section 5 says. Two libsodium behaviours shape the code:

- `crypto_scalarmult_ed25519_noclamp` accepts only points of the prime-order subgroup and
  fails when the result is the identity, yet RFC 9381 multiplies points that carry a
  small-order (torsion) component: try-and-increment candidates before cofactor clearing,
  public keys that pass `validate_key`, and a proof's Gamma. Cofactor clearing is therefore
  three doublings with `crypto_core_ed25519_add`, and `_mul` splits such a point into its
  prime-order and torsion parts.
- `crypto_core_ed25519_add` silently accepts non-canonical encodings (y >= p, a "negative"
  x = 0), while `crypto_core_ed25519_is_valid_point` also refuses the points outside the
  prime-order subgroup that RFC 9381 accepts. `_decode_point` instead decodes, re-encodes,
  and keeps only bytes that survive unchanged, which is exactly RFC 8032 decoding.

Verification works on public data only. Try-and-increment takes a number of rounds that
depends on `alpha` (RFC 9381 section 5.4.1.1): fine here, where `alpha` is public.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import nacl.exceptions
from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_scalar_add,
    crypto_core_ed25519_scalar_invert,
    crypto_core_ed25519_scalar_mul,
    crypto_core_ed25519_scalar_reduce,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
    crypto_sign_seed_keypair,
)

from medchain.types import MedchainError

VRF_PROOF_SIZE = 80
"""A proof pi: Gamma (32) || challenge c (16) || response s (32)."""

VRF_OUTPUT_SIZE = 64
"""The VRF output beta, a SHA-512 digest."""

_SUITE = b"\x03"
_SEED_SIZE = 32
_POINT_SIZE = 32
_CHALLENGE_SIZE = 16
_SCALAR_SIZE = 32
_GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
_IDENTITY = b"\x01" + bytes(_POINT_SIZE - 1)
_ZERO_SCALAR = bytes(_SCALAR_SIZE)
_INVERSE_COFACTOR = crypto_core_ed25519_scalar_invert((8).to_bytes(_SCALAR_SIZE, "little"))


class VrfError(MedchainError):
    """VRF input of the wrong shape: a seed that is not 32 bytes, or a proof that does not
    decode. Verification never raises this; it answers None."""

    code = "invalid_vrf_input"


def vrf_public_key(secret_seed: bytes) -> bytes:
    """The VRF public key of a seed: the seed's Ed25519 public key (RFC 8032)."""
    return _public_key(_check_seed(secret_seed))


@lru_cache(maxsize=256)
def _public_key(seed: bytes) -> bytes:
    """A validator proves every height with one key: derive its point once."""
    public_key, _ = crypto_sign_seed_keypair(seed)
    return bytes(public_key)


def vrf_prove(secret_seed: bytes, alpha: bytes) -> bytes:
    """The proof pi for `alpha` (RFC 9381 section 5.1). Deterministic: the nonce is
    derived from the key and the input, as in RFC 8032."""
    seed = _check_seed(secret_seed)
    x, nonce_key = _expand_seed(seed)
    public_key = _public_key(seed)
    h = _encode_to_curve(public_key, bytes(alpha))
    gamma = _mul(x, h)
    k = crypto_core_ed25519_scalar_reduce(hashlib.sha512(nonce_key + h).digest())
    c = _challenge(public_key, h, gamma, _mul_base(k), _mul(k, h))
    s = crypto_core_ed25519_scalar_add(k, crypto_core_ed25519_scalar_mul(_pad(c), _reduce(x)))
    return gamma + c + s


def vrf_verify(public_key: bytes, alpha: bytes, proof: bytes) -> bytes | None:
    """beta if `proof` is valid for `alpha` under `public_key` (RFC 9381 section 5.3, with
    `validate_key`), otherwise None. Never raises on malformed input."""
    return _verify(bytes(public_key), bytes(alpha), bytes(proof), validate_key=True)


def vrf_proof_to_hash(proof: bytes) -> bytes:
    """beta from a proof (RFC 9381 section 5.2) without checking it: only trust the result
    of a proof that `vrf_verify` accepted. Raises VrfError if the proof does not decode."""
    decoded = _decode_proof(bytes(proof))
    if decoded is None:
        raise VrfError(
            f"not a VRF proof: expected {VRF_PROOF_SIZE} bytes holding a curve point and a "
            "scalar below the group order"
        )
    return _gamma_to_hash(decoded[0])


def _verify(public_key: bytes, alpha: bytes, proof: bytes, *, validate_key: bool) -> bytes | None:
    """RFC 9381 ECVRF_verify. `validate_key` is the RFC's switch; only tests turn it off,
    to show what a small-order key would let a forger do."""
    y = _decode_point(public_key)
    decoded = _decode_proof(proof)
    if y is None or decoded is None:
        return None
    if validate_key and _clear_cofactor(y) == _IDENTITY:
        return None  # a small-order key: outputs would not depend on any secret
    gamma, c, s = decoded
    try:
        h = _encode_to_curve(public_key, alpha)
    except VrfError:
        return None
    u = crypto_core_ed25519_sub(_mul_base(s), _mul(c, y))
    v = crypto_core_ed25519_sub(_mul(s, h), _mul(c, gamma))
    if _challenge(y, h, gamma, u, v) != c:
        return None
    return _gamma_to_hash(gamma)


def _check_seed(secret_seed: bytes) -> bytes:
    seed = bytes(secret_seed)
    if len(seed) != _SEED_SIZE:
        raise VrfError(f"a VRF secret key is a {_SEED_SIZE}-byte Ed25519 seed")
    return seed


def _expand_seed(seed: bytes) -> tuple[bytes, bytes]:
    """RFC 8032 section 5.1.5: the clamped secret scalar x and the nonce key (the second
    half of SHA-512(seed), used by nonce generation, RFC 9381 section 5.4.2.2)."""
    digest = hashlib.sha512(seed).digest()
    x = bytearray(digest[:_SCALAR_SIZE])
    x[0] &= 0xF8
    x[31] &= 0x7F
    x[31] |= 0x40
    return bytes(x), digest[_SCALAR_SIZE:]


def _encode_to_curve(salt: bytes, alpha: bytes) -> bytes:
    """Try-and-increment (RFC 9381 section 5.4.1.1), salted with the public key string."""
    prefix = _SUITE + b"\x01" + salt + alpha
    for ctr in range(256):
        digest = hashlib.sha512(prefix + bytes((ctr, 0x00))).digest()
        candidate = _decode_point(digest[:_POINT_SIZE])
        if candidate is not None:
            return _clear_cofactor(candidate)
    # Each round finds a point with probability about 1/2: this needs 256 misses in a row.
    raise VrfError("try-and-increment found no curve point in 256 attempts")


def _challenge(*points: bytes) -> bytes:
    """Challenge generation (RFC 9381 section 5.4.3): the first 16 bytes of the hash."""
    digest = hashlib.sha512(_SUITE + b"\x02" + b"".join(points) + b"\x00").digest()
    return digest[:_CHALLENGE_SIZE]


def _gamma_to_hash(gamma: bytes) -> bytes:
    """beta = Hash(suite || 0x03 || point_to_string(8 * Gamma) || 0x00). Clearing the
    cofactor makes beta the same for every Gamma that differs only by a small-order point."""
    return hashlib.sha512(_SUITE + b"\x03" + _clear_cofactor(gamma) + b"\x00").digest()


def _decode_proof(proof: bytes) -> tuple[bytes, bytes, bytes] | None:
    """RFC 9381 section 5.4.4: (Gamma, c, s), or None."""
    if len(proof) != VRF_PROOF_SIZE:
        return None
    gamma = _decode_point(proof[:_POINT_SIZE])
    c = proof[_POINT_SIZE : _POINT_SIZE + _CHALLENGE_SIZE]
    s = proof[_POINT_SIZE + _CHALLENGE_SIZE :]
    if gamma is None or int.from_bytes(s, "little") >= _GROUP_ORDER:
        return None
    return gamma, c, s


def _decode_point(data: bytes) -> bytes | None:
    """`data` if it is the canonical RFC 8032 encoding of a curve point (any order),
    else None. libsodium decodes and re-encodes; a non-canonical encoding comes back
    changed, an encoding with no point on the curve is refused."""
    if len(data) != _POINT_SIZE:
        return None
    try:
        reencoded = crypto_core_ed25519_add(data, _IDENTITY)
    except nacl.exceptions.RuntimeError:
        return None
    return data if reencoded == data else None


def _clear_cofactor(point: bytes) -> bytes:
    """8 * point by doubling, which (unlike libsodium's scalarmult) takes any curve point."""
    for _ in range(3):
        point = crypto_core_ed25519_add(point, point)
    return bytes(point)


def _mul(scalar: bytes, point: bytes) -> bytes:
    """scalar * point for any decoded curve point, identity results included. `scalar`
    is the full little-endian integer (not reduced mod the group order): its value mod 8
    acts on the torsion part."""
    reduced = _reduce(scalar)
    try:
        return bytes(crypto_scalarmult_ed25519_noclamp(reduced, point))
    except nacl.exceptions.RuntimeError:
        pass  # a torsion component, or an identity result: take the point apart
    cleared = _clear_cofactor(point)
    prime_part = _IDENTITY
    if cleared != _IDENTITY:
        prime_part = crypto_scalarmult_ed25519_noclamp(_INVERSE_COFACTOR, cleared)
    torsion = crypto_core_ed25519_sub(point, prime_part)
    result = _IDENTITY
    if prime_part != _IDENTITY and reduced != _ZERO_SCALAR:
        result = crypto_scalarmult_ed25519_noclamp(reduced, prime_part)
    for _ in range(scalar[0] % 8):  # the torsion part's order divides 8
        result = crypto_core_ed25519_add(result, torsion)
    return bytes(result)


def _mul_base(scalar: bytes) -> bytes:
    """scalar * B; libsodium refuses a zero scalar, whose product is the identity."""
    reduced = _reduce(scalar)
    if reduced == _ZERO_SCALAR:
        return _IDENTITY
    return bytes(crypto_scalarmult_ed25519_base_noclamp(reduced))


def _reduce(scalar: bytes) -> bytes:
    return bytes(crypto_core_ed25519_scalar_reduce(scalar.ljust(64, b"\x00")))


def _pad(scalar: bytes) -> bytes:
    return scalar.ljust(_SCALAR_SIZE, b"\x00")
