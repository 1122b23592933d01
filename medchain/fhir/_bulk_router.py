"""The Bulk Data export's HTTP side, as the Bulk Data Access IG asks: the kick-off
(`Prefer: respond-async`, `_outputFormat`, `_type`, `_since`) answers 202 with the
status URL in Content-Location; the status URL answers 202 with X-Progress while the
export runs, then the manifest, and cancels on DELETE; the files come as
application/fhir+ndjson. Refusals are OperationOutcomes with their HTTP status."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from medchain.fhir._bulk import (
    BulkExports,
    ExportKind,
    ExportRefused,
    ExportRequest,
    ExportStatus,
    JobState,
    outcome,
)
from medchain.gateway import show_time

FHIR_JSON: Final = "application/fhir+json"
FHIR_NDJSON: Final = "application/fhir+ndjson"
OUTPUT_FORMATS: Final = frozenset({FHIR_NDJSON, "application/ndjson", "ndjson"})
_ACCEPTED: Final = frozenset({FHIR_JSON, "application/json", "application/*", "*/*"})
_TYPE_NAME: Final = re.compile(r"[A-Z][A-Za-z]{1,63}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
RETRY_AFTER_S: Final = 2
_CHUNK: Final = 1 << 16
_SHOWN: Final = 60


def bulk_router(exports: BulkExports, base_url: Callable[[Request], str]) -> APIRouter:
    """The Bulk Data routes: kick-off (`/$export`, `/Patient/$export`), the status URL
    (`/$export-status/{job}`: GET polls, DELETE cancels) and the files
    (`/$export-files/{job}/{name}`). `base_url(request)` is the FHIR base the links in
    Content-Location and the manifest start with. Include it before routes that take
    `/{type}/{id}`, which would otherwise match these paths. No token check of its own:
    the including app checks its bearer token on every route."""
    router = APIRouter()

    @router.get("/$export")
    def system_export(request: Request) -> Response:
        return _kick_off(exports, base_url, request, ExportKind.SYSTEM)

    @router.get("/Patient/$export")
    def patient_export(request: Request) -> Response:
        return _kick_off(exports, base_url, request, ExportKind.PATIENT)

    @router.get("/$export-status/{job_id}")
    def export_status(job_id: str, request: Request) -> Response:
        try:
            status = exports.status(job_id)
        except ExportRefused as exc:
            return _refused(exc)
        if status.state is JobState.RUNNING:
            progress = f"{status.written} resources written"
            headers = {"X-Progress": progress, "Retry-After": str(RETRY_AFTER_S)}
            return Response(status_code=202, headers=headers)
        if status.failure is not None:
            return _refused(status.failure)
        headers = {}
        if status.expires_ms is not None:
            headers["Expires"] = email.utils.formatdate(status.expires_ms / 1000, usegmt=True)
        return JSONResponse(_manifest(status, base_url(request)), headers=headers)

    @router.delete("/$export-status/{job_id}")
    def cancel_export(job_id: str) -> Response:
        try:
            exports.cancel(job_id)
        except ExportRefused as exc:
            return _refused(exc)
        text = f"export {job_id} is cancelled and its files are deleted"
        return _fhir_json(202, outcome("information", "informational", text))

    @router.get("/$export-files/{job_id}/{name}")
    def export_file(job_id: str, name: str) -> Response:
        try:
            handle = exports.open_file(job_id, name)
        except ExportRefused as exc:
            return _refused(exc)
        return StreamingResponse(_chunks(handle), media_type=FHIR_NDJSON)

    return router


def _kick_off(
    exports: BulkExports, base_url: Callable[[Request], str], request: Request, kind: ExportKind
) -> Response:
    try:
        job_id = exports.start(_export_request(request, kind, exports.resource_types))
    except ExportRefused as exc:
        return _refused(exc)
    status_url = f"{base_url(request).rstrip('/')}/$export-status/{job_id}"
    text = f"the export has started; poll {status_url} for its manifest"
    response = _fhir_json(202, outcome("information", "informational", text))
    response.headers["Content-Location"] = status_url
    return response


def _export_request(
    request: Request, kind: ExportKind, known_types: frozenset[str] | None
) -> ExportRequest:
    """The kick-off's parameters, checked as the Bulk Data IG asks; ExportRefused (400)
    for a request it refuses. With `Prefer: handling=lenient`, parameters and types this
    server does not support are ignored (and reported in the manifest's error file)."""
    prefer = _prefer_tokens(request.headers.get("prefer", ""))
    if "respond-async" not in prefer:
        raise _bad("a bulk export runs asynchronously: send the header `Prefer: respond-async`")
    accept = request.headers.get("accept")
    if accept is not None and not _accepts_fhir_json(accept):
        raise _bad(f"a kick-off answers in {FHIR_JSON}: send `Accept: {FHIR_JSON}`")
    lenient = "handling=lenient" in prefer
    types: set[str] | None = None
    since_ms = None
    ignored: list[str] = []
    for name, value in request.query_params.multi_items():
        value = value.replace(" ", "+")  # an unencoded '+' arrives as a space
        if name == "_outputFormat" and value not in OUTPUT_FORMATS:
            raise _bad(f"_outputFormat {_shown(value)} is not supported; ask for {FHIR_NDJSON}")
        if name == "_since":
            since_ms = _instant_ms(value)
        elif name == "_type":
            types = (types or set()) | _types(value, known_types, lenient, ignored)
        elif name != "_outputFormat":
            if not lenient:
                raise ExportRefused(
                    400,
                    "not-supported",
                    f"the parameter {_shown(name)} is not supported (only _outputFormat, "
                    "_since and _type are); leave it out, or send `Prefer: handling=lenient` "
                    "to have it ignored",
                )
            ignored.append(name)
    chosen = None if types is None else frozenset(types)
    return ExportRequest(kind, chosen, since_ms, str(request.url), tuple(ignored))


def _types(value: str, known: frozenset[str] | None, lenient: bool, ignored: list[str]) -> set[str]:
    names = {name.strip() for name in value.split(",")}
    bad = sorted(n for n in names if not _TYPE_NAME.fullmatch(n))
    if bad:
        raise _bad(
            f"_type holds {_shown(bad[0])}, not a resource type; e.g. _type=Observation,Condition"
        )
    unknown = sorted(names - known) if known is not None else []
    if unknown and not lenient:
        raise ExportRefused(
            400,
            "not-supported",
            f"_type {', '.join(unknown)}: this server holds no such resources (it exports "
            f"{', '.join(sorted(known or ()))}); send `Prefer: handling=lenient` to ignore them",
        )
    ignored.extend(f"_type={name}" for name in unknown)
    return names - set(unknown)


def _instant_ms(value: str) -> int:
    """A FHIR instant (`_since`) as ms since the Unix epoch."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _bad(
            f"_since {_shown(value)} is not a FHIR instant; give a time with its zone, e.g. "
            "2024-05-01T00:00:00Z"
        )
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _prefer_tokens(header: str) -> set[str]:
    return {
        token.strip().lower().replace(" ", "")
        for part in header.split(",")
        for token in part.split(";")
    }


def _accepts_fhir_json(accept: str) -> bool:
    ranges = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return not ranges.isdisjoint(_ACCEPTED)


def _manifest(status: ExportStatus, base: str) -> dict[str, Any]:
    """The Bulk Data manifest of a finished export."""
    files = f"{base.rstrip('/')}/$export-files/{status.job_id}"
    return {
        "transactionTime": show_time(status.transaction_ms),
        "request": status.request.url,
        "requiresAccessToken": True,
        "output": [
            {"type": f.type, "url": f"{files}/{f.name}", "count": f.count} for f in status.output
        ],
        "error": [
            {"type": f.type, "url": f"{files}/{f.name}", "count": f.count} for f in status.errors
        ],
    }


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _shown(value: str) -> str:
    """A parameter as an error message quotes it: cut short, so a message stays a line."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def _bad(message: str) -> ExportRefused:
    return ExportRefused(400, "invalid", message)


def _refused(exc: ExportRefused) -> Response:
    response = _fhir_json(exc.status, outcome("error", exc.issue_code, exc.message))
    if exc.status == 429:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _fhir_json(status: int, body: dict[str, Any]) -> Response:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)
