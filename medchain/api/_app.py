"""`create_api`: the node's HTTP API as a FastAPI app, documented at /docs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.types import Scope

from medchain.api import (
    _anchoring,
    _blobs,
    _consents,
    _devices,
    _disclosures,
    _emergency,
    _fleet,
    _node,
    _orgs,
    _proxies,
    _recovery,
    _state,
    _txs,
    _uploads,
)
from medchain.api._blobs import DEFAULT_MAX_BLOB_BATCH_BYTES
from medchain.api._deps import ApiState, install
from medchain.api._errors import install_error_handlers
from medchain.api._limits import AdmissionGate
from medchain.api._middleware import ApiMetrics, BodyLimit, CatchAll, RequestMetrics
from medchain.api._models import ErrorBody
from medchain.api._service import NodeService
from medchain.offchain import DEFAULT_MAX_BLOB_BYTES

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest JSON request body (a batch of transactions is the big one)."""
_JSON_OVERHEAD = 4096
_RLP_OVERHEAD = 18
"""What an RLP list of one string adds to it (two prefixes of up to 9 bytes)."""

_DESCRIPTION = """\
A medchain node: submit signed transactions (a record's encrypted body with the
transaction naming it), read committed state, fetch encrypted bodies, and watch the
node.

Bytes are hex, account addresses bech32 (`mc1...`). Every chain object carries
`encoded`, the hex of its canonical encoding, which the Python client
(`medchain.client.HttpChain`) decodes. Every error is
`{"error": {"code": ..., "message": ...}}`: 4xx for bad input (the message says what
to do), 503 with Retry-After when the mempool is full, 500 only for a bug in the node.
A client whose transactions made the node verify more signatures than its budget
allows without being admitted (forgeries) is answered 429 with Retry-After.

The routes that serve sealed data (a record version's wraps and ciphertext, blobs,
research copies, search, vitals, break-glass answers) answer only a signed read:
header `Authorization: Medchain-Read key=<hex>, time=<ms>, purpose=<code>, sig=<hex>`
(medchain.crypto.sign_read_request; within 60 s of the node's clock), 401 without one
or for a bad one, 403 for a signer who may not read it (the message says what they
lack), 410 for an erased record. Each read served is logged as a disclosure. A blob
is served with the query naming what holds it (`?record=&version=`,
`?institution=&record=`, `?batch=&patient=`, `?scope=&index=`). docs/PRIVACY.md,
"Authenticated reads", says who may read what.

A call that checks who may act (organisations, credentials, proxies, break-glass,
registration, records, research, devices, opening an anonymous scope) is run against
the latest committed state when it is submitted with its sender's next nonce: one
the contracts would refuse is answered at once, nothing spent, with the contract's
code: 403 when the sender may not act so (`not_credentialed`, `not_an_admin`,
`not_a_proxy`, `not_owner`, `not_authorised`, `wrong_role`), 422 for arguments no
state accepts (`invalid_argument`), 409 for a conflict with the state (already done,
unknown, not yet possible).
"""

_TAGS = [
    {"name": "transactions", "description": "Submit signed transactions; follow them."},
    {"name": "blocks", "description": "Committed blocks and their commit certificates."},
    {"name": "chain", "description": "Genesis and the validators."},
    {"name": "accounts", "description": "Balances, nonces and the registry."},
    {"name": "records", "description": "Record metadata, versions, audit trails, search."},
    {"name": "research", "description": "De-identified copies shared with institutions."},
    {"name": "anonymous", "description": "Ring-signed contributions to scopes."},
    {"name": "devices", "description": "Medical devices, guardians, gateways, batches."},
    {
        "name": "organisations",
        "description": "The consortium's organisations, proposals, credentials, attestations.",
    },
    {"name": "proxies", "description": "Whom patients named to act for them, and for whom."},
    {
        "name": "emergency",
        "description": "Break-glass: emergency policies, requests, answers, notifications.",
    },
    {
        "name": "disclosures",
        "description": "Who read a patient's data through this node, and the logs' heads.",
    },
    {"name": "recovery", "description": "Key recovery: guardians' policies and requests."},
    {"name": "staking", "description": "Stake and candidates."},
    {"name": "blobs", "description": "Encrypted record bodies by CID."},
    {"name": "node", "description": "Status, health and metrics of this node."},
]

_ERRORS = {
    400: {"model": ErrorBody, "description": "Bad input; the message says what to fix."},
    403: {"model": ErrorBody, "description": "The contracts refuse this sender the call."},
    404: {"model": ErrorBody, "description": "Not on this chain or node."},
    413: {"model": ErrorBody, "description": "Request body over the limit."},
    422: {"model": ErrorBody, "description": "The request does not match the schema."},
    500: {"model": ErrorBody, "description": "A bug in the node (logged)."},
}


def create_api(
    service: NodeService,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    max_blob_batch_bytes: int = DEFAULT_MAX_BLOB_BATCH_BYTES,
) -> FastAPI:
    """The API over `service`. Every endpoint is a coroutine that does not block, so
    it can share the node's event loop. Create one per metrics registry: the API
    registers its request metrics there. Request bodies are bounded by
    `max_blob_batch_bytes` for POST /v1/blobs/batch (whose blobs are each at most
    `max_blob_bytes`), by what a body of `max_blob_bytes` and its transaction take in
    hex for POST /v1/records, and by `max_body_bytes` elsewhere."""
    app = FastAPI(
        title="medchain node API",
        version="1",
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        responses=_ERRORS,  # type: ignore[arg-type]
    )
    install_error_handlers(app)

    # a body travels as hex in POST /v1/records' JSON, a lone blob in an RLP list
    upload_bytes = max(max_body_bytes, 2 * (max_blob_bytes + service.genesis.params.max_tx_bytes))
    batch_bytes = max(max_blob_batch_bytes, max_blob_bytes + _RLP_OVERHEAD)

    def limit_for(scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        if scope["method"] == "POST" and path == "/v1/records":
            return upload_bytes + _JSON_OVERHEAD
        if scope["method"] == "POST" and path == "/v1/blobs/batch":
            return batch_bytes
        return max_body_bytes

    # Added innermost first: metrics see the final status, 500s included.
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(AdmissionGate, wait_s=service.admission_wait_s)
    app.add_middleware(CatchAll)
    app.add_middleware(RequestMetrics, metrics=ApiMetrics(service.metrics_registry))

    install(app, ApiState(service, max_blob_bytes))
    for module in (
        _txs,
        _state,
        _devices,
        _fleet,
        _orgs,
        _proxies,
        _consents,
        _emergency,
        _recovery,
        _blobs,
        _uploads,
        _node,
        _anchoring,
        _disclosures,
    ):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
