"""VRF: RFC 9381's known answers for ECVRF-EDWARDS25519-SHA512-TAI, the properties a VRF
promises (correct, unforgeable under tampering, unique per key and input), and the key
and point checks that those properties rest on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nacl.exceptions
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_is_valid_point,
    crypto_core_ed25519_scalar_add,
    crypto_core_ed25519_scalar_mul,
    crypto_core_ed25519_sub,
)

from medchain.crypto import (
    VRF_OUTPUT_SIZE,
    VRF_PROOF_SIZE,
    AccountKeys,
    VrfError,
    _vrf,
    vrf_proof_to_hash,
    vrf_prove,
    vrf_public_key,
    vrf_verify,
)
from medchain.crypto._vrf import (
    _challenge,
    _encode_to_curve,
    _expand_seed,
    _mul,
    _mul_base,
    _reduce,
    _verify,
)
from medchain.types import MedchainError

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "rfc9381_edwards25519_sha512_tai.json").read_text()
)

FIELD_PRIME = 2**255 - 19
IDENTITY = b"\x01" + bytes(31)
ORDER_8_POINT = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
"""Generates the torsion subgroup; checked below rather than taken on trust."""

seeds = st.binary(min_size=32, max_size=32)
alphas = st.binary(max_size=64)


def _times(n: int, point: bytes) -> bytes:
    result = IDENTITY
    for _ in range(n):
        result = crypto_core_ed25519_add(result, point)
    return result


SMALL_ORDER_POINTS = [_times(n, ORDER_8_POINT) for n in range(8)]


def _encode(y: int, sign: int) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


def _other_encodings(point: bytes) -> list[bytes]:
    """Non-canonical encodings of a point: y + p where that fits in 255 bits, and the
    sign bit set on x = 0."""
    y = int.from_bytes(point, "little") & (2**255 - 1)
    signs = (0, 1) if y in (1, FIELD_PRIME - 1) else (point[31] >> 7,)
    ys = [y, y + FIELD_PRIME] if y + FIELD_PRIME < 2**255 else [y]
    return [e for e in (_encode(v, s) for v in ys for s in signs) if e != point]


NON_CANONICAL_SMALL_ORDER = [e for p in SMALL_ORDER_POINTS for e in _other_encodings(p)]


def _forge(
    public_key: bytes, alpha: bytes, x: bytes, key_torsion: bytes, gamma_torsion: bytes
) -> bytes:
    """A proof built by hand for a key x*B + key_torsion (encoded as `public_key`) and a
    Gamma of x*H + gamma_torsion, shapes an honest prover never makes. Verification
    subtracts c times each torsion part from U and V, so the forger guesses c mod 8
    beforehand and retries until the guess comes true. The challenge hashes the key as
    decoded and re-encoded (RFC 9381's point_to_string(Y)), the salt is the key as given."""
    key_point = crypto_core_ed25519_add(public_key, IDENTITY)
    h = _encode_to_curve(public_key, alpha)
    gamma = crypto_core_ed25519_add(_mul(x, h), gamma_torsion)
    for attempt in range(64):
        k = _reduce(hashlib.sha512(b"forge" + bytes([attempt])).digest())
        for guess in range(8):
            u = crypto_core_ed25519_sub(_mul_base(k), _times(guess, key_torsion))
            v = crypto_core_ed25519_sub(_mul(k, h), _times(guess, gamma_torsion))
            c = _challenge(key_point, h, gamma, u, v)
            if c[0] % 8 == guess:
                cx = crypto_core_ed25519_scalar_mul(c.ljust(32, b"\x00"), _reduce(x))
                return bytes(gamma + c + crypto_core_ed25519_scalar_add(k, cx))
    raise AssertionError("no guess of c mod 8 came true")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_rfc9381_known_answers(vector: dict[str, str]) -> None:
    seed = bytes.fromhex(vector["secret_key"])
    public_key = bytes.fromhex(vector["public_key"])
    alpha = bytes.fromhex(vector["alpha"])
    proof = bytes.fromhex(vector["pi"])
    beta = bytes.fromhex(vector["beta"])
    assert vrf_public_key(seed) == public_key
    assert _expand_seed(seed)[0].hex() == vector["x"]
    assert _encode_to_curve(public_key, alpha).hex() == vector["h"]
    assert vrf_prove(seed, alpha) == proof
    assert vrf_verify(public_key, alpha, proof) == beta
    assert vrf_proof_to_hash(proof) == beta


def test_vrf_key_is_the_account_signing_key() -> None:
    keys = AccountKeys.generate()
    assert vrf_public_key(keys.signing_seed) == keys.public_key
    proof = vrf_prove(keys.signing_seed, b"round 7")
    assert vrf_verify(keys.public_key, b"round 7", proof) == vrf_proof_to_hash(proof)


@given(seeds, alphas)
def test_a_proof_verifies_and_gives_its_hash(seed: bytes, alpha: bytes) -> None:
    proof = vrf_prove(seed, alpha)
    beta = vrf_verify(vrf_public_key(seed), alpha, proof)
    assert len(proof) == VRF_PROOF_SIZE
    assert beta is not None and len(beta) == VRF_OUTPUT_SIZE
    assert beta == vrf_proof_to_hash(proof)


@given(seeds, alphas, alphas)
def test_another_input_fails(seed: bytes, alpha: bytes, other: bytes) -> None:
    assume(alpha != other)
    assert vrf_verify(vrf_public_key(seed), other, vrf_prove(seed, alpha)) is None


@given(seeds, seeds, alphas)
def test_another_key_fails_and_has_another_output(seed: bytes, other: bytes, alpha: bytes) -> None:
    assume(seed != other)
    proof = vrf_prove(seed, alpha)
    assert vrf_verify(vrf_public_key(other), alpha, proof) is None
    assert vrf_proof_to_hash(vrf_prove(other, alpha)) != vrf_proof_to_hash(proof)


@given(seeds, alphas, st.integers(0, VRF_PROOF_SIZE - 1), st.integers(1, 255))
def test_any_changed_proof_byte_fails(seed: bytes, alpha: bytes, index: int, flip: int) -> None:
    proof = bytearray(vrf_prove(seed, alpha))
    proof[index] ^= flip
    assert vrf_verify(vrf_public_key(seed), alpha, bytes(proof)) is None


@given(seeds, alphas)
def test_deterministic(seed: bytes, alpha: bytes) -> None:
    assert vrf_prove(seed, alpha) == vrf_prove(seed, alpha)


@given(st.binary(max_size=40), alphas, st.binary(max_size=100))
def test_verify_never_raises_on_garbage(public_key: bytes, alpha: bytes, proof: bytes) -> None:
    assert vrf_verify(public_key, alpha, proof) is None


@given(st.binary(min_size=VRF_PROOF_SIZE, max_size=VRF_PROOF_SIZE))
def test_proof_to_hash_answers_or_raises_vrf_error(proof: bytes) -> None:
    try:
        assert len(vrf_proof_to_hash(proof)) == VRF_OUTPUT_SIZE
    except VrfError as error:
        assert isinstance(error, MedchainError) and error.code == "invalid_vrf_input"


def test_malformed_inputs_raise_vrf_error() -> None:
    with pytest.raises(VrfError):
        vrf_prove(b"short", b"alpha")
    with pytest.raises(VrfError):
        vrf_public_key(bytes(33))
    with pytest.raises(VrfError):
        vrf_proof_to_hash(bytes(VRF_PROOF_SIZE - 1))
    big_s = bytes(48) + b"\xff" * 32  # s above the group order
    with pytest.raises(VrfError):
        vrf_proof_to_hash(big_s)


def test_small_order_points_are_all_eight() -> None:
    assert len(set(SMALL_ORDER_POINTS)) == 8
    assert _times(4, ORDER_8_POINT) != IDENTITY
    assert _times(8, ORDER_8_POINT) == IDENTITY
    assert not any(crypto_core_ed25519_is_valid_point(p) for p in SMALL_ORDER_POINTS)
    assert len(NON_CANONICAL_SMALL_ORDER) == 6


@pytest.mark.parametrize("key", SMALL_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_small_order_key_is_rejected(key: bytes) -> None:
    """With a small-order key the verification equations hold for a proof made without
    any secret, and its output is the same for every input: validate_key must refuse."""
    forged = {alpha: _forge(key, alpha, bytes(32), key, IDENTITY) for alpha in (b"a", b"b")}
    outputs = {_verify(key, alpha, p, validate_key=False) for alpha, p in forged.items()}
    assert None not in outputs and len(outputs) == 1
    assert all(vrf_verify(key, alpha, p) is None for alpha, p in forged.items())


def _lenient_decode(data: bytes) -> bytes | None:
    try:
        return bytes(crypto_core_ed25519_add(data, IDENTITY))
    except nacl.exceptions.RuntimeError:
        return None


@pytest.mark.parametrize("key", NON_CANONICAL_SMALL_ORDER, ids=lambda p: p.hex()[:8])
def test_non_canonical_key_is_rejected_by_decoding(
    key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused even without validate_key: the encoding itself fails RFC 8032 decoding.
    A decoder that re-encodes leniently (libsodium's add alone) would accept the forgery."""
    point = crypto_core_ed25519_add(key, IDENTITY)
    forged = _forge(key, b"a", bytes(32), point, IDENTITY)
    assert _verify(key, b"a", forged, validate_key=False) is None
    assert vrf_verify(key, b"a", forged) is None
    monkeypatch.setattr(_vrf, "_decode_point", _lenient_decode)
    assert _verify(key, b"a", forged, validate_key=False) is not None


def test_non_canonical_gamma_does_not_decode() -> None:
    """y = 3 is a point outside the prime-order subgroup but not of small order; its
    encoding y + p is the one a lenient decoder would let through."""
    canonical, other = _encode(3, 0), _encode(3 + FIELD_PRIME, 0)
    assert len(vrf_proof_to_hash(canonical + bytes(48))) == VRF_OUTPUT_SIZE
    with pytest.raises(VrfError):
        vrf_proof_to_hash(other + bytes(48))


@given(seeds, alphas)
def test_gamma_torsion_does_not_change_the_output(seed: bytes, alpha: bytes) -> None:
    """RFC 9381 clears the cofactor before hashing Gamma, so a proof whose Gamma carries
    a small-order part still verifies, to the same beta: proofs need not be unique,
    outputs are."""
    x, _ = _expand_seed(seed)
    public_key = vrf_public_key(seed)
    forged = _forge(public_key, alpha, x, IDENTITY, ORDER_8_POINT)
    assert forged != vrf_prove(seed, alpha)
    assert vrf_verify(public_key, alpha, forged) == vrf_proof_to_hash(vrf_prove(seed, alpha))


def test_key_with_torsion_part_is_valid_as_rfc9381_says() -> None:
    """validate_key refuses only small-order keys: x*B plus a small-order point is a
    valid key, whose output still depends on x alone (and on alpha)."""
    seed = bytes(range(32))
    x, _ = _expand_seed(seed)
    key = crypto_core_ed25519_add(vrf_public_key(seed), ORDER_8_POINT)
    assert not crypto_core_ed25519_is_valid_point(key)
    plain = _forge(key, b"a", x, ORDER_8_POINT, IDENTITY)
    twisted = _forge(key, b"a", x, ORDER_8_POINT, SMALL_ORDER_POINTS[3])
    beta = vrf_verify(key, b"a", plain)
    assert beta is not None
    assert vrf_verify(key, b"a", twisted) == beta
    assert vrf_verify(key, b"b", plain) is None
