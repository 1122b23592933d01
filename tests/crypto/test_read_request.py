"""Signed read requests: known answers, and every part of the request bound by the
signature (chain, method, target, time, purpose, body) within the time window."""

from __future__ import annotations

import hashlib

import pytest

from medchain.crypto import (
    READ_REQUEST_WINDOW_MS,
    AccountKeys,
    ReadRequestInvalid,
    parse_read_header,
    read_request_digest,
    sign_read_request,
    verify_read_request,
)

# RFC 8032 test 1's secret key: the signature below is deterministic (Ed25519).
KAT_KEYS = AccountKeys(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"), bytes(32)
)
KAT_TARGET = "/v1/records/" + "ab" * 16 + "/versions/1"
KAT_TIME = 1_700_000_000_000
KAT_DIGEST = "1bd42fe2133e06e3a3022bff5ae5bb66929ea2fe7314da8a4d052f3626cd3f9f"
KAT_HEADER = (
    "Medchain-Read key=d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a, "
    "time=1700000000000, purpose=TREAT, sig=a1f1461f0e14213c19ecb5c61333d9846a29087f7797810308"
    "a14f7ee5b8232ecc338f06768ef455d69a9cbe345b691cfbe405c50c327d5f72fbd08e2f779a03"
)
CHAIN = "medchain-kat"


def _tagged(tag: str, *parts: bytes) -> bytes:
    """The spec's tagged hash, written out independently of medchain.types."""
    h = hashlib.sha256(bytes([len(tag)]) + tag.encode())
    for part in parts:
        h.update(len(part).to_bytes(4, "big") + part)
    return h.digest()


def test_digest_known_answer() -> None:
    digest = read_request_digest(CHAIN, "GET", KAT_TARGET, KAT_TIME, "TREAT", b"")
    assert digest.hex() == KAT_DIGEST
    assert digest == _tagged(
        "medchain/read-request",
        CHAIN.encode(),
        b"GET",
        KAT_TARGET.encode(),
        KAT_TIME.to_bytes(8, "big"),
        b"TREAT",
        hashlib.sha256(b"").digest(),
    )


def test_header_known_answer_parses_and_verifies() -> None:
    header = sign_read_request(KAT_KEYS, CHAIN, "GET", KAT_TARGET, KAT_TIME, "TREAT")
    assert header == KAT_HEADER
    request = parse_read_header(header)
    assert (request.public_key, request.time_ms, request.purpose) == (
        KAT_KEYS.public_key,
        KAT_TIME,
        "TREAT",
    )
    verify_read_request(request, CHAIN, "GET", KAT_TARGET, b"", KAT_TIME)


@pytest.mark.parametrize(
    ("chain", "method", "target", "body"),
    [
        ("other-chain", "GET", KAT_TARGET, b""),
        (CHAIN, "POST", KAT_TARGET, b""),
        (CHAIN, "GET", KAT_TARGET.replace("/1", "/2"), b""),
        (CHAIN, "GET", KAT_TARGET + "?x=1", b""),
        (CHAIN, "GET", KAT_TARGET, b"{}"),
    ],
    ids=["chain", "method", "path", "query", "body"],
)
def test_a_request_signed_for_something_else_is_refused(
    chain: str, method: str, target: str, body: bytes
) -> None:
    request = parse_read_header(KAT_HEADER)
    with pytest.raises(ReadRequestInvalid, match="does not match"):
        verify_read_request(request, chain, method, target, body, KAT_TIME)


def test_another_purpose_breaks_the_signature() -> None:
    forged = parse_read_header(KAT_HEADER.replace("purpose=TREAT", "purpose=HRESCH"))
    with pytest.raises(ReadRequestInvalid, match="does not match"):
        verify_read_request(forged, CHAIN, "GET", KAT_TARGET, b"", KAT_TIME)


@pytest.mark.parametrize("skew", [READ_REQUEST_WINDOW_MS + 1, -READ_REQUEST_WINDOW_MS - 1])
def test_outside_the_window_is_refused(skew: int) -> None:
    request = parse_read_header(KAT_HEADER)
    with pytest.raises(ReadRequestInvalid, match="clock"):
        verify_read_request(request, CHAIN, "GET", KAT_TARGET, b"", KAT_TIME + skew)


@pytest.mark.parametrize("skew", [READ_REQUEST_WINDOW_MS, -READ_REQUEST_WINDOW_MS])
def test_the_window_edges_are_accepted(skew: int) -> None:
    verify_read_request(
        parse_read_header(KAT_HEADER), CHAIN, "GET", KAT_TARGET, b"", KAT_TIME + skew
    )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Medchain-Read key=00, time=1, purpose=TREAT, sig=00",
        KAT_HEADER.replace("time=1700000000000", "time=-5"),
        KAT_HEADER.replace("purpose=TREAT", "purpose=TR EAT"),
        KAT_HEADER + ", extra=1",
        KAT_HEADER.replace(", purpose=TREAT", ""),
        KAT_HEADER.replace("sig=a1", "sig=zz"),
    ],
)
def test_malformed_headers_say_what_the_header_is(header: str) -> None:
    with pytest.raises(ReadRequestInvalid, match="Medchain-Read"):
        parse_read_header(header)
