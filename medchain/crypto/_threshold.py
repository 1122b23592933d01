"""Threshold break-glass keys over ristretto255: Shamir shares of a scalar, an ElGamal KEM
to its point, and partial decryptions that each prove they are honest.

Why: a patient's emergency key x must open in an emergency without any single
organisation (or the chain) holding it. x is split t-of-n (Shamir over the scalar field,
holder i gets s_i = f(i), f(0) = x) and only its point P = x·G is public. A record's
content key is sealed to P with ElGamal: R = r·G goes on chain, the key is AES-256-GCM
under HKDF(r·P). To open it, each of t holders publishes D_i = s_i·R with a Chaum-Pedersen
proof that log_G(S_i) = log_R(D_i) for its public commitment S_i = s_i·G, so a wrong
partial is caught before it is used; Lagrange interpolation in the exponent then gives
x·R = r·P without anyone learning x. Fewer than t partials give a point unrelated to x·R.

All group arithmetic is `medchain.crypto._ristretto` (libsodium); key derivation and
sealing are HKDF-SHA256 and AES-256-GCM from `cryptography`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medchain.crypto._hybrid import CONTENT_KEY_SIZE, DecryptionFailed, InvalidKey
from medchain.crypto._ristretto import (
    GENERATOR,
    IDENTITY,
    SCALAR_SIZE,
    ZERO_SCALAR,
    Point,
    Scalar,
    add,
    base_mul,
    hash_to_scalar,
    is_canonical_point,
    is_canonical_scalar,
    mul,
    random_scalar,
    scalar_add,
    scalar_invert,
    scalar_mul,
    scalar_sub,
    sub,
)
from medchain.types import MedchainError

MAX_HOLDERS = 256
"""Most shares one secret is split into: a bound on the work of interpolation."""

SEALED_EMERGENCY_KEY_SIZE = CONTENT_KEY_SIZE + 16
"""An emergency-wrapped content key: the AES-256-GCM ciphertext and its tag."""

_KDF_INFO_TAG = b"medchain/emergency-kem/v1\x00"
_DLEQ_TAG = b"medchain/threshold-dleq/v1\x00"
_NONCE_TAG = b"medchain/threshold-dleq-nonce/v1\x00"
_KEM_NONCE = bytes(12)
"""Each KEM key seals exactly one content key (a fresh r per wrap): a fixed nonce is safe."""


class ThresholdError(MedchainError):
    """Misuse of the threshold scheme: a threshold or holder count out of range, a share
    index that is zero, repeated or too large, too few partials, or a point or scalar that
    is not canonical. Verification never raises this; it answers False."""

    code = "invalid_threshold_input"


@dataclass(frozen=True, slots=True)
class Share:
    """Holder `index`'s share s_i = f(index) of a secret; keep `value` as secret as a key."""

    index: int
    value: Scalar


@dataclass(frozen=True, slots=True)
class EmergencyWrap:
    """A content key sealed to a threshold public key: the ephemeral R = r·G and the
    AES-256-GCM ciphertext of the key. Plain bytes, so `medchain.types.encode` takes it."""

    ephemeral: Point
    sealed_key: bytes


@dataclass(frozen=True, slots=True)
class DleqProof:
    """A Chaum-Pedersen proof (challenge c, response z) that one scalar links S_i to G
    and D_i to R."""

    challenge: Scalar
    response: Scalar


def new_threshold_key() -> tuple[Scalar, Point]:
    """A fresh secret x and its public point x·G: the key to split with split_secret and
    to seal content keys to with emergency_wrap."""
    secret = random_scalar()
    return secret, base_mul(secret)


def split_secret(secret: Scalar, threshold: int, holders: int) -> list[Share]:
    """Shamir-split `secret` so that any `threshold` of the `holders` shares (indices
    1..holders) rebuild it and fewer reveal nothing; the coefficients are fresh random."""
    _check_counts(threshold, holders)
    if not is_canonical_scalar(secret) or secret == ZERO_SCALAR:
        raise ThresholdError("the secret to split is a nonzero canonical scalar")
    coefficients = [secret, *(random_scalar() for _ in range(threshold - 1))]
    return _shares_of_polynomial(coefficients, holders)


def share_commitment(share: Share) -> Point:
    """The public commitment S_i = s_i·G that lets anyone check holder i's partials."""
    return base_mul(_check_share(share).value)


def combine_points(
    partials: Mapping[int, Point] | Iterable[tuple[int, Point]], threshold: int
) -> Point:
    """Lagrange interpolation at 0 in the exponent: from t partials s_i·Q (index, point)
    of a t-of-n secret x, the point x·Q. Refuses fewer than `threshold` partials, and
    indices that are zero, repeated or above MAX_HOLDERS."""
    return interpolate_points(partials, threshold, at=0)


def interpolate_points(
    points: Mapping[int, Point] | Iterable[tuple[int, Point]], threshold: int, at: int
) -> Point:
    """The value at `at` of the degree threshold-1 polynomial in the exponent through
    `points` (index, f(index)·Q): at 0 the secret's point, at j holder j's commitment."""
    pairs = _check_points(points, threshold)
    if not 0 <= at <= MAX_HOLDERS:
        raise ThresholdError(f"interpolation is at an index from 0 to {MAX_HOLDERS}")
    indices = [index for index, _ in pairs]
    result = IDENTITY
    for index, point in pairs:
        result = add(result, mul(_lagrange_coefficient(index, indices, at), point))
    return result


def commitments_consistent(public: Point, commitments: Sequence[Point], threshold: int) -> bool:
    """Whether `commitments` (S_1..S_n, in index order) lie on one polynomial of degree
    threshold-1 whose value at 0 is `public`: then any `threshold` honest partials open
    what is sealed to `public`. Never raises; False for any malformed input."""
    holders = len(commitments)
    if not (
        isinstance(threshold, int)
        and 1 <= threshold <= holders <= MAX_HOLDERS
        and _is_key_point(public)
        and all(_is_key_point(c) for c in commitments)
    ):
        return False
    base = list(enumerate(commitments[:threshold], start=1))
    if interpolate_points(base, threshold, at=0) != public:
        return False
    return all(
        interpolate_points(base, threshold, at=index) == commitments[index - 1]
        for index in range(threshold + 1, holders + 1)
    )


def emergency_wrap(public: Point, content_key: bytes, context: bytes) -> EmergencyWrap:
    """Seal `content_key` to the threshold public key `public`; `context` (e.g. record id
    and version) binds the wrap, and open_emergency_wrap needs it again."""
    return _wrap_with(random_scalar(), public, content_key, context)


def open_emergency_wrap(shared: Point, wrap: EmergencyWrap, context: bytes) -> bytes:
    """The content key of `wrap`, given shared = x·R (from combine_points over the
    partials); DecryptionFailed when the point, context or bytes are not the right ones."""
    if not isinstance(wrap, EmergencyWrap) or not _is_key_point(wrap.ephemeral):
        raise DecryptionFailed("this emergency wrap does not hold a valid ephemeral point")
    if not is_canonical_point(shared):
        raise DecryptionFailed("the combined point is not a ristretto255 element")
    if len(wrap.sealed_key) != SEALED_EMERGENCY_KEY_SIZE:
        raise DecryptionFailed(
            f"an emergency-sealed key is {SEALED_EMERGENCY_KEY_SIZE} bytes, got "
            f"{len(wrap.sealed_key)}: the data was altered"
        )
    aead = AESGCM(_kem_key(shared, wrap.ephemeral, context))
    try:
        return aead.decrypt(_KEM_NONCE, wrap.sealed_key, context)
    except InvalidTag:
        raise DecryptionFailed(
            "the combined point does not open this emergency wrap: too few or wrong "
            "partials, another record's context, or altered data"
        ) from None


def partial_decrypt(share: Share, ephemeral: Point) -> tuple[Point, DleqProof]:
    """Holder i's partial D_i = s_i·R for the ephemeral R, with its proof of honesty.
    The proof's nonce is hedged: derived from the share, R and fresh random bytes."""
    value = _check_share(share).value
    if not _is_key_point(ephemeral):
        raise ThresholdError("the ephemeral is a canonical, non-identity ristretto255 element")
    partial = mul(value, ephemeral)
    nonce = hash_to_scalar(_NONCE_TAG, value, ephemeral, partial, secrets.token_bytes(32))
    return partial, _prove_with_nonce(value, ephemeral, partial, nonce)


def verify_partial(commitment: Point, ephemeral: Point, partial: Point, proof: DleqProof) -> bool:
    """Whether `proof` shows log_G(commitment) = log_ephemeral(partial). Never raises."""
    if not (
        isinstance(proof, DleqProof)
        and _is_key_point(commitment)
        and _is_key_point(ephemeral)
        and _is_key_point(partial)
        and is_canonical_scalar(proof.challenge)
        and is_canonical_scalar(proof.response)
    ):
        return False
    c, z = proof.challenge, proof.response
    a = sub(base_mul(z), mul(c, commitment))
    b = sub(mul(z, ephemeral), mul(c, partial))
    return _challenge(commitment, ephemeral, partial, a, b) == c


def _prove_with_nonce(value: Scalar, ephemeral: Point, partial: Point, nonce: Scalar) -> DleqProof:
    """A = k·G, B = k·R, c = H(G, S_i, R, D_i, A, B), z = k + c·s_i."""
    commitment = base_mul(value)
    c = _challenge(commitment, ephemeral, partial, base_mul(nonce), mul(nonce, ephemeral))
    return DleqProof(c, scalar_add(nonce, scalar_mul(c, value)))


def _challenge(commitment: Point, ephemeral: Point, partial: Point, a: Point, b: Point) -> Scalar:
    return hash_to_scalar(_DLEQ_TAG, GENERATOR, commitment, ephemeral, partial, a, b)


def _wrap_with(
    ephemeral_secret: Scalar, public: Point, content_key: bytes, context: bytes
) -> EmergencyWrap:
    if not _is_key_point(public):
        raise ThresholdError(
            "an emergency public key is a canonical, non-identity ristretto255 element"
        )
    if not isinstance(content_key, bytes) or len(content_key) != CONTENT_KEY_SIZE:
        raise InvalidKey(f"a content key is {CONTENT_KEY_SIZE} bytes; use new_content_key()")
    ephemeral = base_mul(ephemeral_secret)
    aead = AESGCM(_kem_key(mul(ephemeral_secret, public), ephemeral, context))
    return EmergencyWrap(ephemeral, aead.encrypt(_KEM_NONCE, content_key, context))


def _kem_key(shared: Point, ephemeral: Point, context: bytes) -> bytes:
    """HKDF-SHA256 of the shared point, with info = tag || R || context (R is 32 bytes,
    so the context starts at a fixed place)."""
    if not isinstance(context, bytes):
        raise ThresholdError("an emergency wrap's context is bytes (e.g. record id and version)")
    info = _KDF_INFO_TAG + ephemeral + context
    kdf = HKDF(algorithm=hashes.SHA256(), length=CONTENT_KEY_SIZE, salt=None, info=info)
    return kdf.derive(shared)


def _shares_of_polynomial(coefficients: Sequence[Scalar], holders: int) -> list[Share]:
    """f(1)..f(holders) for f(x) = coefficients[0] + coefficients[1]·x + ..., by Horner."""
    shares = []
    for index in range(1, holders + 1):
        x = _scalar_of(index)
        value = ZERO_SCALAR
        for coefficient in reversed(coefficients):
            value = scalar_add(scalar_mul(value, x), coefficient)
        shares.append(Share(index, value))
    return shares


def _lagrange_coefficient(index: int, indices: Sequence[int], at: int) -> Scalar:
    """prod over j != index of (at - j) / (index - j), mod l."""
    numerator = denominator = _scalar_of(1)
    for other in indices:
        if other != index:
            numerator = scalar_mul(numerator, scalar_sub(_scalar_of(at), _scalar_of(other)))
            denominator = scalar_mul(denominator, scalar_sub(_scalar_of(index), _scalar_of(other)))
    return scalar_mul(numerator, scalar_invert(denominator))


def _check_points(
    points: Mapping[int, Point] | Iterable[tuple[int, Point]], threshold: int
) -> list[tuple[int, Point]]:
    pairs = list(points.items() if isinstance(points, Mapping) else points)
    if not isinstance(threshold, int) or not 1 <= threshold <= MAX_HOLDERS:
        raise ThresholdError(f"a threshold is from 1 to {MAX_HOLDERS}")
    if len(pairs) < threshold:
        raise ThresholdError(
            f"{len(pairs)} partial(s) cannot open a {threshold}-of-n secret; "
            f"wait for {threshold - len(pairs)} more"
        )
    seen: set[int] = set()
    for index, point in pairs:
        _check_index(index)
        if index in seen:
            raise ThresholdError(f"share index {index} is given twice; each holder counts once")
        seen.add(index)
        if not is_canonical_point(point):
            raise ThresholdError(f"the point for share {index} is not a ristretto255 element")
    return pairs


def _check_counts(threshold: int, holders: int) -> None:
    if not isinstance(holders, int) or not 1 <= holders <= MAX_HOLDERS:
        raise ThresholdError(f"a secret is split into 1 to {MAX_HOLDERS} shares, not {holders}")
    if not isinstance(threshold, int) or not 1 <= threshold <= holders:
        raise ThresholdError(
            f"a threshold is from 1 to the number of holders ({holders}), not {threshold}"
        )


def _check_share(share: Share) -> Share:
    if not isinstance(share, Share):
        raise ThresholdError("expected a Share")
    _check_index(share.index)
    if not is_canonical_scalar(share.value) or share.value == ZERO_SCALAR:
        raise ThresholdError(
            f"share {share.index} is not a nonzero scalar of {SCALAR_SIZE} bytes below the "
            "group order; it was altered or is not a medchain share"
        )
    return share


def _check_index(index: int) -> None:
    if type(index) is not int or not 1 <= index <= MAX_HOLDERS:
        raise ThresholdError(
            f"a share index is from 1 to {MAX_HOLDERS}, not {index!r} (0 is the secret itself)"
        )


def _is_key_point(point: object) -> bool:
    """A canonical element other than the identity (whose scalar would be 0)."""
    return isinstance(point, bytes) and point != IDENTITY and is_canonical_point(point)


def _scalar_of(number: int) -> Scalar:
    return number.to_bytes(SCALAR_SIZE, "little")
