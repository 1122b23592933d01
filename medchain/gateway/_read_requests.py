"""The gateway's signed reads: `GET /v1/readings/{id}` takes the node's
`Authorization: Medchain-Read ...` header (medchain.crypto.sign_read_request), signed for
the chain the gateway commits to, within `READ_REQUEST_WINDOW_MS` of the gateway's clock;
and the answer it gives once the signer may know of the reading."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from medchain.api import request_target
from medchain.app import PurposeOfUse
from medchain.crypto import (
    READ_SCHEME,
    ReadRequestInvalid,
    format_address,
    parse_read_header,
    verify_read_request,
)
from medchain.gateway._service import ReadingStatus
from medchain.types import MedchainError

_CHALLENGE = {"WWW-Authenticate": READ_SCHEME}
_SIGN_HOW = (
    f"sign the request (header 'Authorization: {READ_SCHEME} key=<hex>, time=<ms>, "
    "purpose=<code>, sig=<hex>') with the key of the reading's device, its patient or one "
    "of their vitals readers; `medchain reading prove --key` does"
)


class ReadRefused(MedchainError):
    """A read request the gateway does not accept: unsigned, badly signed, stale (401)
    or for an unknown purpose (400)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers


@dataclass(frozen=True)
class SignedRead:
    public_key: bytes
    purpose: PurposeOfUse
    now_ms: int
    """The gateway's wall clock when it checked the request."""


def verified_read(request: Request, chain_id: str) -> SignedRead:
    """The request's verified signer and purpose, or ReadRefused saying what to fix. A
    GET has no body: the signature covers the empty one."""
    header = request.headers.get("authorization")
    if header is None:
        raise ReadRefused(
            401,
            "read_unsigned",
            f"this gateway tells of a reading only to a signed read: {_SIGN_HOW}",
            _CHALLENGE,
        )
    now_ms = time.time_ns() // 1_000_000  # the gateway's own clock, as a node's API
    try:
        signed = parse_read_header(header)
        verify_read_request(
            signed, chain_id, request.method, request_target(request.scope), b"", now_ms
        )
    except ReadRequestInvalid as exc:
        raise ReadRefused(401, exc.code, exc.message, _CHALLENGE) from None
    try:
        purpose = PurposeOfUse(signed.purpose)
    except ValueError:
        codes = ", ".join(p.value for p in PurposeOfUse)
        raise ReadRefused(
            400, "unknown_purpose", f"purpose {signed.purpose!r} is not one of {codes}"
        ) from None
    return SignedRead(signed.public_key, purpose, now_ms)


def status_body(reading_id: str, status: ReadingStatus) -> dict[str, Any]:
    """The JSON answer for a pending or committed reading."""
    body: dict[str, Any] = {"id": reading_id, "status": status.state}
    if status.committed is not None:
        c = status.committed
        body |= {
            "batch": c.batch_id.hex(),
            "device": format_address(c.device),
            "patient": format_address(c.patient),
            "time_ms": c.time_ms,
            "bundle_cid": c.cid,
            "proof": {
                "root": c.proof.root.hex(),
                "index": c.proof.index,
                "tree_size": c.proof.tree_size,
                "path": [h.hex() for h in c.proof.path],
            },
        }
    return body
