from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID

from medchain.types import (
    CID_PREFIX_TEXT,
    InvalidCid,
    MedchainError,
    cid_for,
    cid_from_digest,
    parse_cid,
)

HELLO_CID = "bafkreide5semuafsnds3ugrvm6fbwuyw2ijpj43gwjdxemstjkfozi37hq"


def test_hello_world_matches_ipfs() -> None:
    # `echo -n "Hello world" | ipfs add --cid-version=1 --raw-leaves`
    assert cid_for(b"Hello world") == HELLO_CID


def test_parse_gives_the_sha256_digest() -> None:
    assert parse_cid(HELLO_CID) == hashlib.sha256(b"Hello world").digest()


def test_cid_from_digest_matches_cid_for() -> None:
    assert cid_from_digest(hashlib.sha256(b"Hello world").digest()) == HELLO_CID
    with pytest.raises(InvalidCid, match="32-byte SHA-256 digest, got 20 bytes"):
        cid_from_digest(bytes(20))


@given(st.binary(max_size=512))
def test_matches_multiformats_and_round_trips(data: bytes) -> None:
    cid = cid_for(data)
    assert cid.startswith(CID_PREFIX_TEXT)
    reference = CID("base32", 1, "raw", ("sha2-256", hashlib.sha256(data).digest()))
    assert cid == str(reference)
    assert parse_cid(cid) == hashlib.sha256(data).digest()
    assert cid_from_digest(parse_cid(cid)) == cid


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u", "CIDv0"),
        ("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "codec dag-pb"),
        (HELLO_CID.upper(), f"write it as {HELLO_CID}"),
        (str(CID.decode(HELLO_CID).set(base="base58btc")), f"write it as {HELLO_CID}"),
        (str(CID("base32", 1, "raw", ("sha2-256", bytes(20)))), "truncated 20-byte digest"),
        (str(CID("base32", 1, "raw", ("sha2-512", bytes(64)))), "hash sha2-512"),
        ("", "is not a CID"),
        ("hello", "is not a CID"),
        ("../../etc/passwd", "is not a CID"),
        (HELLO_CID[:-1], "is not a CID"),
        (HELLO_CID + "a", "is not a CID"),
        (HELLO_CID[:-1] + "r", "is not a CID"),  # same bytes, non-zero padding bits
        (" " + HELLO_CID, "is not a CID"),
    ],
)
def test_bad_cids_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidCid, match=reason) as caught:
        parse_cid(text)
    assert caught.value.code == "invalid_cid"
    assert isinstance(caught.value, MedchainError)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidCid, match="a CID is text"):
        parse_cid(HELLO_CID.encode())  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_parse_raises_only_invalid_cid(text: str) -> None:
    try:
        digest = parse_cid(text)
    except InvalidCid:
        return
    assert cid_from_digest(digest) == text
