"""The gateway's signed reads (medchain.gateway._read_requests): the node's header,
checked against the gateway's chain id, path, window and the PurposeOfUse codes."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request

from medchain.crypto import AccountKeys, sign_read_request
from medchain.gateway._read_requests import ReadRefused, verified_read

CHAIN = "medchain-test"
PATH = "/v1/readings/" + "ab" * 32


def _request(authorization: str | None, path: str = PATH) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request(
        {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
         "query_string": b"", "headers": headers}
    )  # fmt: skip


def _signed(
    keys: AccountKeys, *, chain: str = CHAIN, ago_ms: int = 0, purpose: str = "PATRQT"
) -> str:
    now = time.time_ns() // 1_000_000
    return sign_read_request(keys, chain, "GET", PATH, now - ago_ms, purpose)


def _refused(authorization: str | None) -> ReadRefused:
    with pytest.raises(ReadRefused) as info:
        verified_read(_request(authorization), CHAIN)
    return info.value


def test_a_signed_read_names_its_key_and_purpose() -> None:
    keys = AccountKeys.generate()
    signed = verified_read(_request(_signed(keys)), CHAIN)
    assert (signed.public_key, signed.purpose.value) == (keys.public_key, "PATRQT")
    assert abs(signed.now_ms - time.time_ns() // 1_000_000) < 3_600_000


def test_a_read_that_does_not_hold_is_refused_with_what_to_do() -> None:
    keys = AccountKeys.generate()
    unsigned = _refused(None)
    assert (unsigned.status, unsigned.code) == (401, "read_unsigned")
    assert unsigned.headers == {"WWW-Authenticate": "Medchain-Read"}
    assert "--key" in unsigned.message
    assert _refused(_signed(keys, chain="another")).status == 401
    assert "behind" in _refused(_signed(keys, ago_ms=120_000)).message
    assert _refused("Bearer abc").status == 401
    unknown = _refused(_signed(keys, purpose="GOSSIP"))
    assert (unknown.status, unknown.code) == (400, "unknown_purpose")
