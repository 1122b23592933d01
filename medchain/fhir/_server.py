"""The FHIR R4 REST facade: one account's records over FHIR's RESTful API, for an EHR or
a FHIR client, with the bearer token printed at start on every route but `/metadata`.

Handlers are coroutines that call the source on the server's own loop: an in-process
chain (`--data`) lives in the thread that opened it, and one account's facade serves
one calling system, so there is nothing to gain from a thread pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from medchain.client import NodeError, NodeUnreachable
from medchain.fhir._bulk import BulkExports, ExportKind
from medchain.fhir._bulk_router import bulk_router
from medchain.fhir._bundles import collection, history, searchset
from medchain.fhir._capability import INTERACTIONS, Interaction, capability_statement, supports
from medchain.fhir._convert import FHIR_JSON
from medchain.fhir._export import AccountExports
from medchain.fhir._outcome import FhirError, Issue, fhir_error, operation_outcome
from medchain.fhir._search import InvalidSearch, UnsupportedSearchParameter, parse_search
from medchain.fhir._source import AccountSource
from medchain.fhir._token import bearer_matches
from medchain.types import MedchainError

_JSON_BODIES = ("application/fhir+json", "application/json", "application/json+fhir")
_FORM = "application/x-www-form-urlencoded"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def base_url(request: Request) -> str:
    """The server's base as the client reached it (a mount's prefix included)."""
    root = str(request.scope.get("root_path", ""))
    return str(request.url.replace(path=root, query="", fragment="")).rstrip("/")


def create_fhir_app(
    source: AccountSource, token: str, exports: BulkExports | None = None
) -> FastAPI:
    """The facade over `source`, its routes guarded by `token`; bulk export jobs run
    by `exports` (by default, jobs over what this account exports), closed with the app."""
    account_exports = AccountExports(source)
    if exports is None:
        exports = BulkExports(
            account_exports.resources,
            kinds=account_exports.kinds(),
            resource_types=frozenset(INTERACTIONS),
        )
    bulk = exports

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with bulk:
            yield

    app = FastAPI(
        title="medchain FHIR R4",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=FhirResponse,
        lifespan=lifespan,
    )
    started = datetime.now(UTC).isoformat(timespec="seconds")
    _install_error_handlers(app)

    @app.get("/metadata")
    async def metadata(request: Request) -> Response:
        return FhirResponse(capability_statement(base_url(request), started, True))

    async def require_token(request: Request) -> None:
        if not bearer_matches(request.headers.get("authorization"), token):
            raise fhir_error(
                401,
                "login",
                "send the bearer token this server printed at start, as "
                "'Authorization: Bearer <token>'",
            )

    async def prepare_export(request: Request) -> None:
        """Kick-off only: read the chain here, on the server's thread, for the job."""
        path = request.url.path
        if request.method == "GET" and path.endswith("/Patient/$export"):
            account_exports.prepare(ExportKind.PATIENT)
        elif request.method == "GET" and path.endswith("/$export"):
            account_exports.prepare(ExportKind.SYSTEM)

    app.include_router(  # before /{type}/{id}, which would match its paths
        bulk_router(bulk, base_url),
        dependencies=[Depends(require_token), Depends(prepare_export)],
    )
    app.include_router(_resource_routes(source), dependencies=[Depends(require_token)])
    return app


def _resource_routes(source: AccountSource) -> APIRouter:
    router = APIRouter()

    @router.get("/Patient/{fhir_id}/$everything")
    async def everything(request: Request, fhir_id: str) -> Response:
        resources = source.everything(fhir_id)
        return FhirResponse(collection(base_url(request), str(request.url), resources))

    @router.get("/{resource_type}/{fhir_id}/_history/{version}")
    async def vread(resource_type: str, fhir_id: str, version: str) -> Response:
        _require(resource_type, Interaction.VREAD)
        if not version.isdigit():
            raise fhir_error(404, "not-found", f"{version!r} is not a version id of {fhir_id}")
        return _resource_response(source.vread(resource_type, fhir_id, int(version)))

    @router.get("/{resource_type}/{fhir_id}/_history")
    async def instance_history(request: Request, resource_type: str, fhir_id: str) -> Response:
        _require(resource_type, Interaction.HISTORY)
        versions = source.history(resource_type, fhir_id)
        return FhirResponse(history(base_url(request), str(request.url), versions))

    @router.post("/{resource_type}/_search")
    async def search_by_post(request: Request, resource_type: str) -> Response:
        _require_media(request, (_FORM,))
        form = parse_qsl((await request.body()).decode("utf-8", "replace"), True)
        return _search(source, request, resource_type, [*request.query_params.multi_items(), *form])

    @router.get("/{resource_type}/{fhir_id}")
    async def read(resource_type: str, fhir_id: str) -> Response:
        _require(resource_type, Interaction.READ)
        return _resource_response(source.read(resource_type, fhir_id))

    @router.put("/{resource_type}/{fhir_id}")
    async def update(request: Request, resource_type: str, fhir_id: str) -> Response:
        _require(resource_type, Interaction.UPDATE)
        _require_media(request, _JSON_BODIES)
        expected = _if_match(request.headers.get("if-match"))
        resource = source.update(resource_type, fhir_id, await request.body(), expected)
        return _resource_response(resource, location=base_url(request))

    @router.get("/{resource_type}")
    async def search(request: Request, resource_type: str) -> Response:
        return _search(source, request, resource_type, request.query_params.multi_items())

    @router.post("/{resource_type}")
    async def create(request: Request, resource_type: str) -> Response:
        _require(resource_type, Interaction.CREATE)
        _require_media(request, _JSON_BODIES)
        resource = source.create(resource_type, await request.body())
        return _resource_response(resource, 201, location=base_url(request))

    return router


def _search(
    source: AccountSource,
    request: Request,
    resource_type: str,
    params: Sequence[tuple[str, str]],
) -> Response:
    _require(resource_type, Interaction.SEARCH)
    strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "")
    try:
        query = parse_search(resource_type, params, strict)
    except UnsupportedSearchParameter as exc:
        raise fhir_error(422, "not-supported", exc.message, exc.parameter) from None
    except InvalidSearch as exc:
        raise fhir_error(400, "invalid", exc.message, exc.parameter) from None
    page = source.search(query)
    warnings = []
    if query.ignored:
        names = ", ".join(query.ignored)
        ignored = Issue(
            "not-supported", f"ignored unsupported search parameters: {names}", "warning"
        )
        warnings.append(operation_outcome([ignored]))
    kept = [(n, v) for n, v in params if n not in query.ignored]
    bundle = searchset(base_url(request), resource_type, kept, page, warnings)
    return FhirResponse(bundle)


def _require(resource_type: str, interaction: Interaction) -> None:
    if supports(resource_type, interaction):
        return
    if not supports(resource_type, Interaction.READ):
        raise fhir_error(404, "not-supported", f"this server holds no {resource_type!r} resources")
    raise fhir_error(
        405,
        "not-supported",
        f"{interaction.value} is not supported for {resource_type}; see /metadata",
    )


def _require_media(request: Request, accepted: Sequence[str]) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in accepted:
        raise fhir_error(
            415,
            "not-supported",
            f"send the body as {accepted[0]} (Content-Type), not {media or 'nothing'!r}",
        )


def _if_match(header: str | None) -> int | None:
    """The version an `If-Match: W/"3"` header expects, or None without one."""
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise fhir_error(400, "invalid", f'If-Match {header!r} is not a version ETag like W/"3"')
    return int(value)


def _resource_response(
    resource: dict[str, Any], status: int = 200, location: str | None = None
) -> Response:
    version = resource["meta"]["versionId"]
    headers = {"ETag": f'W/"{version}"'}
    if "lastUpdated" in resource["meta"]:
        headers["Last-Modified"] = _http_date(resource["meta"]["lastUpdated"])
    if location is not None:
        headers["Location"] = (
            f"{location}/{resource['resourceType']}/{resource['id']}/_history/{version}"
        )
    return FhirResponse(resource, status, headers=headers)


def _http_date(instant: str) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _install_error_handlers(app: FastAPI) -> None:
    """Every refusal as an OperationOutcome; handlers are coroutines (Starlette runs
    plain functions in a thread pool)."""

    async def refused(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FhirError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return FhirResponse(exc.outcome(), exc.status, headers=headers)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return FhirResponse(
            fhir_error(exc.status_code, code, str(exc.detail)).outcome(), exc.status_code
        )

    async def bad_request(_: Request, exc: Exception) -> Response:
        return FhirResponse(fhir_error(400, "invalid", "malformed request").outcome(), 400)

    async def chain_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, MedchainError)
        status = 503 if isinstance(exc, NodeUnreachable | NodeError) else 422
        code = "transient" if status == 503 else "processing"
        return FhirResponse(fhir_error(status, code, exc.message).outcome(), status)

    async def bug(_: Request, exc: Exception) -> Response:
        message = "the server failed to handle this request (a bug); report it"
        return FhirResponse(fhir_error(500, "exception", message).outcome(), 500)

    app.add_exception_handler(FhirError, refused)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(MedchainError, chain_error)
    app.add_exception_handler(Exception, bug)
