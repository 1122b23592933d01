"""Authenticated reads: the one dependency every route serving sealed data takes (a
record version's wraps or ciphertext, research copies, a search index, vitals,
break-glass answers), the access check, and the disclosure each served read leaves.

A request is signed as medchain.crypto.sign_read_request says (header
`Authorization: Medchain-Read ...`); the node checks the signature, the time window
and that the key is its account's current key (401 otherwise), then asks the
medchain.app read-access rules (403 naming what the signer lacks; 410 for an erased
record), and passes a Disclosure of what it serves to `service.disclosures`.
Encryption stays the real protection: this keeps ciphertext and wraps from strangers
and gives the patient an account of who read what.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.types import Scope

from medchain import app as contracts
from medchain.api._deps import Service
from medchain.api._errors import ApiError
from medchain.api._models import ErrorBody
from medchain.api._service import NodeService
from medchain.crypto import (
    READ_SCHEME,
    ReadRequestInvalid,
    parse_read_header,
    verify_read_request,
)
from medchain.node import Disclosure, DisclosureKind, ReadBasis

log = logging.getLogger("medchain.api.reads")

_SIGN_HOW = (
    f"sign the read (header 'Authorization: {READ_SCHEME} key=<hex>, time=<ms>, "
    "purpose=<code>, sig=<hex>'; medchain.client.HttpChain signs for the keys it is "
    "given, and the CLI for --key)"
)
_CHALLENGE = {"WWW-Authenticate": READ_SCHEME}

READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Unsigned, badly signed or stale read request."},
    403: {"model": ErrorBody, "description": "The signer may not read this."},
    410: {"model": ErrorBody, "description": "The record was erased."},
}
"""The statuses a signed read adds to a route's documented responses."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Who signed a read request, for what, and when the node checked it."""

    account: bytes
    purpose: contracts.PurposeOfUse
    now_ms: int


def request_target(scope: Scope) -> str:
    """The request's path and query as the client sent them (what a read request signs):
    the target `verify_read_request` checks, for the node's routes and the gateway's."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _reader(request: Request, service: Service) -> Reader:
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(
            401,
            "read_unsigned",
            f"this node serves sealed data only to a signed read: {_SIGN_HOW}",
            _CHALLENGE,
        )
    now_ms = time.time_ns() // 1_000_000  # the API's own clock: this is not consensus
    try:
        signed = parse_read_header(header)
        body = await request.body()
        verify_read_request(
            signed,
            service.genesis.chain_id,
            request.method,
            request_target(request.scope),
            body,
            now_ms,
        )
    except ReadRequestInvalid as exc:
        raise ApiError(401, exc.code, exc.message, _CHALLENGE) from None
    try:
        purpose = contracts.PurposeOfUse(signed.purpose)
    except ValueError:
        codes = ", ".join(p.value for p in contracts.PurposeOfUse)
        raise ApiError(
            400, "unknown_purpose", f"purpose {signed.purpose!r} is not one of {codes}"
        ) from None
    try:  # the account the key signs for: its own, or the account it was rotated into
        account = contracts.sender_of(service.chain.ledger.state, signed.public_key)
    except contracts.KeyRetired as exc:
        raise ApiError(401, exc.code, exc.message, _CHALLENGE) from None
    return Reader(account, purpose, now_ms)


SignedRead = Annotated[Reader, Depends(_reader)]
"""The verified signer of a read request (401 for none or a bad one)."""


def allowed(check: Callable[[], contracts.ReadAccess]) -> contracts.ReadAccess:
    """`check`'s answer; its refusal as a 403, an erased record as a 410."""
    try:
        return check()
    except contracts.RecordErased as exc:
        raise ApiError(410, exc.code, exc.message) from None
    except contracts.ReadNotAllowed as exc:
        raise ApiError(403, exc.code, exc.message) from None


def disclose(
    service: NodeService,
    reader: Reader,
    access: contracts.ReadAccess,
    kind: DisclosureKind,
    patient: bytes,
    *,
    record_id: bytes = b"",
    version: int = 0,
    detail: str = "",
) -> None:
    """Log one served read; a read the log cannot take is refused (503), not hidden."""
    disclosure = Disclosure(
        reader.now_ms,
        reader.account,
        patient,
        kind,
        reader.purpose.value,
        ReadBasis(access.basis),
        record_id,
        version,
        access.on_behalf,
        detail,
    )
    try:
        service.disclosures.append(disclosure)
    except Exception:
        log.exception("the disclosure log refused an entry")
        raise ApiError(
            503,
            "disclosure_log_unavailable",
            "this node cannot log the read, so it does not serve it; try another node",
        ) from None


def serve_record(
    service: NodeService,
    reader: Reader,
    record: contracts.Record,
    kind: DisclosureKind,
    version: int,
    detail: str = "",
) -> None:
    """Let `reader` read `record`'s version (wraps or ciphertext) or raise; log it."""
    state = service.chain.ledger.state
    access = allowed(
        lambda: contracts.record_access(
            state, record, reader.account, reader.purpose, reader.now_ms
        )
    )
    disclose(
        service,
        reader,
        access,
        kind,
        record.owner,
        record_id=record.record_id,
        version=version,
        detail=detail,
    )


def serve_research_copy(
    service: NodeService, reader: Reader, entry: contracts.ResearchEntry, detail: str = ""
) -> None:
    """Let `reader` read a research copy (its wraps or ciphertext) or raise; log it."""
    state = service.chain.ledger.state
    access = allowed(lambda: contracts.research_access(state, entry, reader.account))
    disclose(
        service,
        reader,
        access,
        DisclosureKind.RESEARCH_COPY,
        entry.patient,
        record_id=entry.record_id,
        version=entry.source_version,
        detail=detail,
    )
