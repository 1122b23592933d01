"""Threshold break-glass keys: known answers from fixed scalars (cross-checked with big-int
arithmetic mod l), the t-of-n properties for random polynomials, DLEQ proofs that fail under
tampering, and the refusal of every malformed input."""

from __future__ import annotations

import hashlib
import json
from itertools import combinations
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.crypto import (
    MAX_HOLDERS,
    DecryptionFailed,
    DleqProof,
    EmergencyWrap,
    InvalidKey,
    Share,
    ThresholdError,
    _threshold,
    combine_points,
    commitments_consistent,
    emergency_wrap,
    interpolate_points,
    new_content_key,
    new_threshold_key,
    open_emergency_wrap,
    partial_decrypt,
    share_commitment,
    split_secret,
    verify_partial,
)
from medchain.crypto._ristretto import (
    GENERATOR,
    GROUP_ORDER,
    IDENTITY,
    add,
    base_mul,
    mul,
    random_scalar,
)
from medchain.types import MedchainError, decode, encode

L = GROUP_ORDER
CONTEXT = b"record 7 version 1"
CONTENT_KEY = bytes(range(32))
INVALID_POINT = bytes.fromhex(
    json.loads((Path(__file__).parent / "vectors" / "rfc9496_ristretto255.json").read_text())[
        "invalid_encodings"
    ]["vectors"][6]["encoding"]
)
NON_CANONICAL_SCALAR = L.to_bytes(32, "little")


def sc(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def integer(scalar: bytes) -> int:
    return int.from_bytes(scalar, "little")


def label(text: str) -> int:
    """A fixed scalar for the known answers: SHA-512 of a label, mod l."""
    return int.from_bytes(hashlib.sha512(text.encode()).digest(), "little") % L


# --- known answers --------------------------------------------------------------------

KAT_COEFFICIENTS = [label("kat secret"), label("kat a1"), label("kat a2")]  # 3-of-5
KAT_SHARES = [
    "368a589f729ceff59dadba4bd08cb6dcd49b40ae318df8132a0d4c52381a1301",
    "becb4d76ae1142f19a9c990065d2e249fc4e809a0b323e292f2e9a3bc60c7703",
    "5acbc42eaf23c6960953f36c7e2f7dd3d2e090370b640b48b655db08dc524f0d",
    "1db5c76b5a6f698e1334d0ed3daaa6645851728530236070bf830fba79ec9b0e",
    "0789562db0f42bd8b83f3083a3425ffd8ca024847b6f3ca24ab8364f9fd95c07",
]
KAT_PUBLIC = "6ed4d76cee0f8fa727215d165a908df14db753ef455971241b286ca0162ec548"
KAT_COMMITMENT_2 = "0a7b117f2b2a7c15af28b7ed3d5b61f8c0600d57c990361a816863bdeec0ee7d"
KAT_EPHEMERAL = "985f3b42e27ccdab0046fe66c8205666a6158fd2acb0941d3dd2ce05e8b9b20f"
KAT_SEALED = (
    "39d106542dfa63e4a23d9cf58fba093c9fd0595bf82a3a0dc1cd3ba796e4e1d2"
    "aa0d5b878eafd039eae469999011c633"
)
KAT_PARTIAL_2 = "b44f0202eb29fecfb5a7b86706de3d5639bcbeb8d491084a36608cd2fc6ca477"
KAT_CHALLENGE_2 = "a4d0c903ff567417f8eb37b58c7fe81236168bfcc852032ed2e3576b1753c500"
KAT_RESPONSE_2 = "4a5c8d07671a60e8e4e8d10a143580c07b133e72977aec8e867e718216c2a400"
KAT_SHARED = "9890d02864e0a38597e2baec6a9bea4d5d28270e1dab817937980c256ec4fd51"


def kat_shares() -> list[Share]:
    return _threshold._shares_of_polynomial([sc(c) for c in KAT_COEFFICIENTS], 5)


def kat_wrap() -> EmergencyWrap:
    public = base_mul(sc(KAT_COEFFICIENTS[0]))
    return _threshold._wrap_with(sc(label("kat ephemeral")), public, CONTENT_KEY, CONTEXT)


def lagrange_at_zero(index: int, indices: list[int]) -> int:
    """The big-int Lagrange coefficient prod j / (j - i) mod l, independent of the module."""
    value = 1
    for other in indices:
        if other != index:
            value = value * other * pow(other - index, -1, L) % L
    return value


def test_shares_are_the_polynomial_evaluated_at_1_to_n() -> None:
    shares = kat_shares()
    assert [s.value.hex() for s in shares] == KAT_SHARES
    assert [s.index for s in shares] == [1, 2, 3, 4, 5]
    for share in shares:
        expected = sum(c * share.index**k for k, c in enumerate(KAT_COEFFICIENTS)) % L
        assert integer(share.value) == expected


def test_commitments_and_public_key_are_known_answers() -> None:
    shares = kat_shares()
    assert base_mul(sc(KAT_COEFFICIENTS[0])).hex() == KAT_PUBLIC
    assert share_commitment(shares[1]).hex() == KAT_COMMITMENT_2
    commitments = [share_commitment(s) for s in shares]
    assert commitments_consistent(bytes.fromhex(KAT_PUBLIC), commitments, 3)


def test_wrap_is_a_known_answer_and_matches_an_independent_kem() -> None:
    wrap = kat_wrap()
    assert wrap.ephemeral.hex() == KAT_EPHEMERAL
    assert wrap.sealed_key.hex() == KAT_SEALED
    shared = mul(sc(KAT_COEFFICIENTS[0]), wrap.ephemeral)  # x * R = r * P
    assert shared.hex() == KAT_SHARED
    info = b"medchain/emergency-kem/v1\x00" + wrap.ephemeral + CONTEXT
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)
    assert AESGCM(key).encrypt(bytes(12), CONTENT_KEY, CONTEXT) == wrap.sealed_key
    assert open_emergency_wrap(shared, wrap, CONTEXT) == CONTENT_KEY


def test_partial_and_proof_are_known_answers() -> None:
    share = kat_shares()[1]
    ephemeral = bytes.fromhex(KAT_EPHEMERAL)
    partial = mul(share.value, ephemeral)
    nonce = label("kat nonce")
    proof = _threshold._prove_with_nonce(share.value, ephemeral, partial, sc(nonce))
    assert partial.hex() == KAT_PARTIAL_2
    assert proof.challenge.hex() == KAT_CHALLENGE_2
    assert proof.response.hex() == KAT_RESPONSE_2
    c = integer(proof.challenge)
    assert integer(proof.response) == (nonce + c * integer(share.value)) % L
    assert verify_partial(bytes.fromhex(KAT_COMMITMENT_2), ephemeral, partial, proof)


@pytest.mark.parametrize("subset", list(combinations(range(1, 6), 3)))
def test_every_three_of_five_combine_to_the_shared_point(subset: tuple[int, ...]) -> None:
    shares = {s.index: s for s in kat_shares()}
    ephemeral = bytes.fromhex(KAT_EPHEMERAL)
    partials = {i: mul(shares[i].value, ephemeral) for i in subset}
    combined = combine_points(partials, 3)
    assert combined.hex() == KAT_SHARED
    by_big_ints = IDENTITY
    for i, point in partials.items():
        by_big_ints = add(by_big_ints, mul(sc(lagrange_at_zero(i, list(subset))), point))
    assert by_big_ints == combined
    assert open_emergency_wrap(combined, kat_wrap(), CONTEXT) == CONTENT_KEY


def test_interpolation_at_an_index_gives_that_holders_commitment() -> None:
    commitments = {s.index: share_commitment(s) for s in kat_shares()}
    known = {i: commitments[i] for i in (1, 4, 5)}
    for index in (2, 3):
        assert interpolate_points(known, 3, at=index) == commitments[index]


# --- properties for random polynomials -----------------------------------------------


@st.composite
def sharings(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """(threshold, holders, a random t-subset of indices)."""
    holders = draw(st.integers(min_value=2, max_value=7))
    threshold = draw(st.integers(min_value=2, max_value=holders))
    subset = draw(st.permutations(range(1, holders + 1)))[:threshold]
    return threshold, holders, subset


@given(sharings())
@settings(max_examples=25, deadline=None)
def test_any_t_of_n_partials_open_the_wrap(sharing: tuple[int, int, list[int]]) -> None:
    threshold, holders, subset = sharing
    secret, public = new_threshold_key()
    shares = split_secret(secret, threshold, holders)
    commitments = [share_commitment(s) for s in shares]
    assert commitments_consistent(public, commitments, threshold)
    content_key = new_content_key()
    wrap = emergency_wrap(public, content_key, CONTEXT)
    partials = {}
    for index in subset:
        partial, proof = partial_decrypt(shares[index - 1], wrap.ephemeral)
        assert verify_partial(commitments[index - 1], wrap.ephemeral, partial, proof)
        partials[index] = partial
    assert open_emergency_wrap(combine_points(partials, threshold), wrap, CONTEXT) == content_key


@given(sharings())
@settings(max_examples=25, deadline=None)
def test_t_minus_one_partials_do_not_give_the_shared_point(
    sharing: tuple[int, int, list[int]],
) -> None:
    threshold, holders, subset = sharing
    secret, public = new_threshold_key()
    shares = split_secret(secret, threshold, holders)
    wrap = emergency_wrap(public, new_content_key(), CONTEXT)
    partials = {i: partial_decrypt(shares[i - 1], wrap.ephemeral)[0] for i in subset[:-1]}
    with pytest.raises(ThresholdError, match="wait for 1 more"):
        combine_points(partials, threshold)
    guess = combine_points(partials, threshold - 1)
    assert guess != mul(secret, wrap.ephemeral)
    with pytest.raises(DecryptionFailed):
        open_emergency_wrap(guess, wrap, CONTEXT)


@given(st.integers(min_value=1, max_value=L - 1))
@settings(max_examples=15, deadline=None)
def test_a_tampered_partial_fails_its_proof(offset: int) -> None:
    secret, public = new_threshold_key()
    share = split_secret(secret, 2, 3)[0]
    ephemeral = emergency_wrap(public, CONTENT_KEY, CONTEXT).ephemeral
    partial, proof = partial_decrypt(share, ephemeral)
    commitment = share_commitment(share)
    assert verify_partial(commitment, ephemeral, partial, proof)
    assert not verify_partial(commitment, ephemeral, add(partial, base_mul(sc(offset))), proof)
    bumped = DleqProof(proof.challenge, sc(integer(proof.response) + offset))
    assert not verify_partial(commitment, ephemeral, partial, bumped)


def test_a_proof_holds_only_for_its_ephemeral_and_its_holder() -> None:
    secret, public = new_threshold_key()
    first, second = split_secret(secret, 2, 2)
    ephemeral = emergency_wrap(public, CONTENT_KEY, CONTEXT).ephemeral
    other_ephemeral = emergency_wrap(public, CONTENT_KEY, CONTEXT).ephemeral
    partial, proof = partial_decrypt(first, ephemeral)
    assert not verify_partial(share_commitment(first), other_ephemeral, partial, proof)
    other_partial = mul(first.value, other_ephemeral)
    assert not verify_partial(share_commitment(first), other_ephemeral, other_partial, proof)
    assert not verify_partial(share_commitment(second), ephemeral, partial, proof)


def test_proofs_are_hedged_and_survive_encoding() -> None:
    secret, public = new_threshold_key()
    share = split_secret(secret, 2, 3)[2]
    ephemeral = emergency_wrap(public, CONTENT_KEY, CONTEXT).ephemeral
    (partial, one), (again, two) = (partial_decrypt(share, ephemeral) for _ in range(2))
    assert partial == again and one != two
    assert decode(DleqProof, encode(one)) == one
    wrap = emergency_wrap(public, CONTENT_KEY, CONTEXT)
    assert decode(EmergencyWrap, encode(wrap)) == wrap


def test_a_wrap_opens_only_in_its_context_and_unaltered() -> None:
    secret, public = new_threshold_key()
    wrap = emergency_wrap(public, CONTENT_KEY, CONTEXT)
    shared = mul(secret, wrap.ephemeral)
    with pytest.raises(DecryptionFailed, match="too few or wrong partials"):
        open_emergency_wrap(shared, wrap, b"record 7 version 2")
    altered = EmergencyWrap(wrap.ephemeral, bytes([wrap.sealed_key[0] ^ 1]) + wrap.sealed_key[1:])
    with pytest.raises(DecryptionFailed):
        open_emergency_wrap(shared, altered, CONTEXT)
    with pytest.raises(DecryptionFailed, match="48 bytes"):
        open_emergency_wrap(shared, EmergencyWrap(wrap.ephemeral, wrap.sealed_key[:-1]), CONTEXT)
    with pytest.raises(DecryptionFailed, match="ephemeral"):
        open_emergency_wrap(shared, EmergencyWrap(IDENTITY, wrap.sealed_key), CONTEXT)


def test_inconsistent_commitments_are_detected() -> None:
    secret, public = new_threshold_key()
    commitments = [share_commitment(s) for s in split_secret(secret, 3, 4)]
    assert commitments_consistent(public, commitments, 3)
    assert not commitments_consistent(base_mul(random_scalar()), commitments, 3)
    for position in range(4):
        swapped = list(commitments)
        swapped[position] = base_mul(random_scalar())
        assert not commitments_consistent(public, swapped, 3)
    assert not commitments_consistent(public, commitments, 2)  # degree 2, not 1
    assert not commitments_consistent(public, commitments, 5)
    assert not commitments_consistent(public, [*commitments[:3], IDENTITY], 3)
    assert not commitments_consistent(INVALID_POINT, commitments, 3)


# --- malformed input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "holders", "message"),
    [
        (0, 3, "threshold is from 1"),
        (4, 3, "threshold is from 1"),
        (2, 0, "split into 1 to"),
        (2, MAX_HOLDERS + 1, "split into 1 to"),
    ],
)
def test_split_refuses_counts_out_of_range(threshold: int, holders: int, message: str) -> None:
    with pytest.raises(ThresholdError, match=message):
        split_secret(random_scalar(), threshold, holders)


@pytest.mark.parametrize("secret", [bytes(32), NON_CANONICAL_SCALAR, b"\x01" * 31])
def test_split_refuses_a_zero_or_non_canonical_secret(secret: bytes) -> None:
    with pytest.raises(ThresholdError, match="nonzero canonical scalar"):
        split_secret(secret, 2, 3)


def test_combine_refuses_zero_repeated_and_out_of_range_indices() -> None:
    point = base_mul(random_scalar())
    with pytest.raises(ThresholdError, match="0 is the secret itself"):
        combine_points({0: point, 1: point}, 2)
    with pytest.raises(ThresholdError, match="given twice"):
        combine_points([(1, point), (1, point)], 2)
    with pytest.raises(ThresholdError, match="from 1 to"):
        combine_points({1: point, MAX_HOLDERS + 1: point}, 2)
    with pytest.raises(ThresholdError, match="threshold is from 1"):
        combine_points({1: point}, 0)
    with pytest.raises(ThresholdError, match="interpolation is at an index"):
        interpolate_points({1: point}, 1, at=-1)


@pytest.mark.parametrize("bad", [INVALID_POINT, b"\x00" * 31, "not bytes"])
def test_combine_refuses_points_that_are_not_elements(bad: bytes) -> None:
    with pytest.raises(ThresholdError, match="share 2 is not a ristretto255 element"):
        combine_points({1: GENERATOR, 2: bad}, 2)


@pytest.mark.parametrize("bad_public", [INVALID_POINT, IDENTITY, b"\x01" * 31])
def test_wrap_refuses_a_public_key_that_is_not_a_usable_element(bad_public: bytes) -> None:
    with pytest.raises(ThresholdError, match="non-identity ristretto255 element"):
        emergency_wrap(bad_public, CONTENT_KEY, CONTEXT)


def test_wrap_refuses_a_content_key_of_the_wrong_size_and_a_text_context() -> None:
    _, public = new_threshold_key()
    with pytest.raises(InvalidKey, match="32 bytes"):
        emergency_wrap(public, CONTENT_KEY[:16], CONTEXT)
    with pytest.raises(ThresholdError, match="context is bytes"):
        emergency_wrap(public, CONTENT_KEY, "record 7")  # type: ignore[arg-type]


def test_open_refuses_a_combined_point_that_is_not_an_element() -> None:
    with pytest.raises(DecryptionFailed, match="not a ristretto255 element"):
        open_emergency_wrap(INVALID_POINT, kat_wrap(), CONTEXT)


@pytest.mark.parametrize(
    "share",
    [
        Share(0, sc(5)),
        Share(MAX_HOLDERS + 1, sc(5)),
        Share(1, NON_CANONICAL_SCALAR),
        Share(1, bytes(32)),
        Share(1, sc(5)[:31]),
    ],
)
def test_partial_decrypt_refuses_malformed_shares(share: Share) -> None:
    with pytest.raises(ThresholdError, match="share"):
        partial_decrypt(share, GENERATOR)


@pytest.mark.parametrize("ephemeral", [INVALID_POINT, IDENTITY, b"\x00" * 33])
def test_partial_decrypt_refuses_a_bad_ephemeral(ephemeral: bytes) -> None:
    with pytest.raises(ThresholdError, match="ephemeral"):
        partial_decrypt(Share(1, sc(5)), ephemeral)


def test_verify_answers_false_for_malformed_input_and_never_raises() -> None:
    share = Share(1, sc(5))
    partial, proof = partial_decrypt(share, GENERATOR)
    commitment = share_commitment(share)
    assert verify_partial(commitment, GENERATOR, partial, proof)
    assert not verify_partial(INVALID_POINT, GENERATOR, partial, proof)
    assert not verify_partial(commitment, IDENTITY, partial, proof)
    assert not verify_partial(commitment, GENERATOR, INVALID_POINT, proof)
    assert not verify_partial(
        commitment, GENERATOR, partial, DleqProof(NON_CANONICAL_SCALAR, proof.response)
    )
    assert not verify_partial(
        commitment, GENERATOR, partial, DleqProof(proof.challenge, NON_CANONICAL_SCALAR)
    )
    assert not verify_partial(commitment, GENERATOR, partial, (proof.challenge, proof.response))  # type: ignore[arg-type]


def test_errors_are_medchain_errors_with_a_code() -> None:
    assert issubclass(ThresholdError, MedchainError)
    assert ThresholdError.code == "invalid_threshold_input"
