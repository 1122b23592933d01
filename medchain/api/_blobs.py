"""The blob store over HTTP: encrypted record bodies by CID. A body is served only to
a signed read by someone who may read what it belongs to (`_blob_access`); HEAD only
says whether the node holds it. Only an edge gateway signing with its registered key
may store bodies here, in bulk, ahead of the batch transaction naming them (a
record's body is stored with its transaction: POST /v1/records). Blob I/O runs in a
worker thread (hashing and fsync of up to the size limit must not stall the loop).
Reads fall back to the node's peers when its store can (FetchingBlobStore)."""

from __future__ import annotations

import functools
import time
from typing import Annotated, TypeGuard

import anyio.to_thread
from fastapi import APIRouter, Header, Path, Query, Request, Response

from medchain.api._blob_access import BlobOwner, authorise_blob
from medchain.api._deps import MaxBlobBytes, Service
from medchain.api._errors import ApiError
from medchain.api._models import MAX_VERSION_NUMBER, BlobsStoredModel, ErrorBody
from medchain.api._reads import READ_RESPONSES, SignedRead
from medchain.api._service import FetchingBlobStore, NodeService
from medchain.crypto import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    address_from_public_key,
    format_address,
    verify_signature,
)
from medchain.offchain import (
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    parse_cid,
)
from medchain.types import (
    MAX_UPLOAD_EXPIRES_MS,
    UPLOAD_EXPIRES_HEADER,
    UPLOAD_SIGNATURE_HEADER,
    UPLOADER_HEADER,
    DecodeError,
    bulk_upload_signing_bytes,
    decode,
)

OCTETS = "application/octet-stream"
CidPath = Annotated[str, Path(description="CIDv1, raw, sha2-256, base32 (bafkrei...).")]
_IMMUTABLE = "private, max-age=31536000, immutable"
"""Private: served to one signed reader, never from a shared cache."""

DEFAULT_MAX_BLOB_BATCH_BYTES = 16 * 1024 * 1024
"""Largest POST /v1/blobs/batch body, the blobs and their encoding together (a single
blob up to the per-blob limit is always accepted)."""
MAX_BLOB_BATCH_BLOBS = 1_000
"""Most blobs one POST /v1/blobs/batch may hold."""
MAX_UPLOAD_AHEAD_MS = 10 * 60 * 1000
"""How far ahead of the node's clock a bulk upload's signature may expire: a captured
request can be replayed only this long (and then only stores the same bytes again)."""
_SIGN_HOW = (
    "sign the request with the gateway's key (medchain.client.HttpBlobStore(chain, "
    "uploader=keys) does)"
)


router = APIRouter(prefix="/v1/blobs", tags=["blobs"])


@router.post(
    "/batch",
    summary="Store an edge gateway's bundles",
    responses={
        401: {"model": ErrorBody, "description": "Unsigned, badly signed or expired."},
        403: {"model": ErrorBody, "description": "Not signed by an active gateway."},
        429: {"model": ErrorBody, "description": "The gateway's quota is used up."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The blobs as the canonical encoding of a tuple[bytes, ...] "
            "(an RLP list of byte strings): medchain.types.encode(blobs, tuple[bytes, ...]).",
            "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_blobs(
    request: Request,
    service: Service,
    max_blob_bytes: MaxBlobBytes,
    uploader: Annotated[
        str | None,
        Header(alias=UPLOADER_HEADER, description="The gateway's Ed25519 public key, hex."),
    ] = None,
    expires: Annotated[
        str | None,
        Header(
            alias=UPLOAD_EXPIRES_HEADER,
            description="When the signature lapses (ms since the Unix epoch), at most "
            "10 minutes ahead of the node's clock.",
        ),
    ] = None,
    signature: Annotated[
        str | None,
        Header(
            alias=UPLOAD_SIGNATURE_HEADER,
            description="Ed25519 signature, hex, of medchain.types."
            "bulk_upload_signing_bytes(chain_id, expires, body).",
        ),
    ] = None,
) -> BlobsStoredModel:
    """An edge gateway's bulk upload: the sealed bundles of a batch, stored before
    the devices.commit_batch that names them. The request is signed by the key of a
    gateway registered and active on chain (headers Medchain-Uploader,
    Medchain-Upload-Expires, Medchain-Upload-Signature, over the chain id, the
    expiry and the SHA-256 of the body). Each blob is at most the per-blob limit, a
    batch at most 1,000 blobs and 16 MiB (by default); bytes already stored change
    nothing. The gateway's bundles that no committed batch names yet count against
    its quota (429 until its batches commit). A record's body is uploaded with its
    transaction instead (POST /v1/records)."""
    data = await request.body()
    gateway = await _authorised(service, data, uploader, expires, signature)
    try:
        blobs = _batch(data, max_blob_bytes)
    except ApiError:
        service.bodies.refused("malformed")
        raise
    return BlobsStoredModel(cids=await service.bodies.upload(gateway, blobs))


@router.get(
    "/{cid}",
    summary="Fetch a blob (signed read)",
    response_class=Response,
    responses={
        200: {"content": {OCTETS: {}}, "description": "The blob's bytes."},
        **READ_RESPONSES,
    },
)
async def get_blob(
    cid: CidPath,
    service: Service,
    reader: SignedRead,
    record: Annotated[
        str | None, Query(description="A record id (with version or institution).")
    ] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION_NUMBER)] = None,
    institution: Annotated[str | None, Query(description="A research copy's institution.")] = None,
    batch: Annotated[str | None, Query(description="A batch id (with patient).")] = None,
    patient: Annotated[str | None, Query(description="The patient of a batch's bundle.")] = None,
    scope: Annotated[str | None, Query(description="An anonymous scope (with index).")] = None,
    index: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    recovery: Annotated[str | None, Query(description="The patient of a recovery kit.")] = None,
    recovery_request: Annotated[str | None, Query(description="A recovery request id.")] = None,
) -> Response:
    """The bytes named by `cid`, checked against it before they are sent, to a signed
    reader who may read what the query says the blob belongs to: a record's version
    (`record`, `version`), a research copy (`institution`, `record`), a patient's bundle
    of vitals (`batch`, `patient`) or an anonymous contribution (`scope`, `index`)."""
    parse_cid(cid)
    owner = BlobOwner(
        record, version, institution, batch, patient, scope, index, recovery, recovery_request
    )
    authorise_blob(service, reader, cid, owner)
    return blob_response(cid, await read_blob(service.blobs, cid))


def blob_response(cid: str, data: bytes) -> Response:
    return Response(
        data, media_type=OCTETS, headers={"ETag": f'"{cid}"', "Cache-Control": _IMMUTABLE}
    )


@router.head("/{cid}", summary="Whether the node holds a blob", response_class=Response)
async def has_blob(cid: CidPath, service: Service) -> Response:
    """200 when the node holds the blob or, on a node with peers, fetched it from one."""
    parse_cid(cid)
    blobs = service.blobs
    if not await anyio.to_thread.run_sync(blobs.has, cid):
        if not fetches(blobs):
            raise ApiError(404, BlobNotFound.code, f"blob {cid} is not stored on this node")
        await blobs.fetch(cid)
    return Response(media_type=OCTETS, headers={"ETag": f'"{cid}"'})


async def _authorised(
    service: NodeService,
    body: bytes,
    uploader: str | None,
    expires: str | None,
    signature: str | None,
) -> str:
    """The address (text: its quota's key) of the active gateway that signed this bulk
    upload; otherwise a 401 or 403 ApiError, counted by reason."""

    def refuse(reason: str, status: int, code: str, message: str) -> ApiError:
        service.bodies.refused(reason)
        return ApiError(status, code, message)

    if uploader is None or expires is None or signature is None:
        raise refuse(
            "unsigned",
            401,
            "upload_unsigned",
            f"a node stores bodies in bulk only for an edge gateway that signs the request "
            f"(headers {UPLOADER_HEADER}, {UPLOAD_EXPIRES_HEADER}, {UPLOAD_SIGNATURE_HEADER}): "
            f"{_SIGN_HOW}; a record's body is uploaded with its transaction "
            "(POST /v1/records)",
        )
    key = _hex_header(uploader, PUBLIC_KEY_SIZE)
    signed = _hex_header(signature, SIGNATURE_SIZE)
    expires_ms = int(expires) if expires.isascii() and expires.isdigit() else None
    if key is None or signed is None or expires_ms is None or expires_ms > MAX_UPLOAD_EXPIRES_MS:
        raise refuse(
            "bad_signature",
            401,
            "upload_signature_invalid",
            f"{UPLOADER_HEADER} must be a {PUBLIC_KEY_SIZE}-byte public key in hex, "
            f"{UPLOAD_SIGNATURE_HEADER} a {SIGNATURE_SIZE}-byte signature in hex and "
            f"{UPLOAD_EXPIRES_HEADER} a time in ms since the Unix epoch; {_SIGN_HOW}",
        )
    now_ms = time.time_ns() // 1_000_000  # the API's own clock: this is not consensus
    if expires_ms < now_ms:
        raise refuse(
            "expired",
            401,
            "upload_expired",
            f"the upload's signature expired at {expires_ms} (the node's clock says "
            f"{now_ms}); sign it again with a later expiry, and check the gateway's clock",
        )
    if expires_ms > now_ms + MAX_UPLOAD_AHEAD_MS:
        raise refuse(
            "expired",
            401,
            "upload_expiry_too_far",
            f"the upload's signature expires {expires_ms - now_ms} ms from now, more than "
            f"the {MAX_UPLOAD_AHEAD_MS // 60_000} minutes a node accepts; sign it with a "
            "nearer expiry, and check the gateway's clock",
        )
    if not await anyio.to_thread.run_sync(  # hashing up to the batch limit: off the loop
        _verify, key, service.genesis.chain_id, expires_ms, body, signed
    ):
        raise refuse(
            "bad_signature",
            401,
            "upload_signature_invalid",
            f"the signature does not match the uploader's key, this chain "
            f"({service.genesis.chain_id}), the expiry and the body sent; {_SIGN_HOW}",
        )
    address = address_from_public_key(key)
    gateway = service.chain.gateway(address)
    if gateway is None or not gateway.active:
        state = "is not a registered gateway" if gateway is None else "is a revoked gateway"
        raise refuse(
            "not_a_gateway",
            403,
            "not_a_gateway",
            f"{format_address(address)} {state} on this chain; only an active edge gateway "
            "may upload bodies in bulk (a hospital registers it: `medchain gateways register`)",
        )
    return format_address(address)


def _verify(key: bytes, chain_id: str, expires_ms: int, body: bytes, signature: bytes) -> bool:
    return verify_signature(key, bulk_upload_signing_bytes(chain_id, expires_ms, body), signature)


def _hex_header(text: str, size: int) -> bytes | None:
    """`text` as exactly `size` bytes of hex, or None."""
    if len(text) != 2 * size or not (text.isascii() and text.isalnum()):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _batch(data: bytes, max_blob_bytes: int) -> tuple[bytes, ...]:
    """The blobs of a POST /v1/blobs/batch body, each within the per-blob limit."""
    try:
        blobs = decode(tuple[bytes, ...], data)
    except DecodeError as exc:
        raise ApiError(
            400,
            "malformed_batch",
            f"the body is not a list of blobs ({exc}); send the canonical encoding of the "
            "blobs as a tuple[bytes, ...] (an RLP list of byte strings)",
        ) from None
    if len(blobs) > MAX_BLOB_BATCH_BLOBS:
        raise ApiError(
            413,
            "too_many_blobs",
            f"the batch holds {len(blobs):,} blobs, over the limit of "
            f"{MAX_BLOB_BATCH_BLOBS:,} per request; split it into several requests",
        )
    for index, blob in enumerate(blobs):
        if len(blob) > max_blob_bytes:
            raise ApiError(
                413,
                BlobTooLarge.code,
                f"blob {index} of the batch is {len(blob):,} bytes, over this node's limit "
                f"of {max_blob_bytes:,} bytes per blob; store large data as several blobs",
            )
    return blobs


def fetches(blobs: BlobStore) -> TypeGuard[FetchingBlobStore]:
    """Whether `blobs` can fetch what it lacks. Answered once per class: an isinstance
    check against a runtime protocol inspects every member, 70 µs on each read."""
    return _class_fetches(type(blobs))


@functools.cache
def _class_fetches(kind: type) -> bool:
    return issubclass(kind, FetchingBlobStore)


async def read_blob(blobs: BlobStore, cid: str) -> bytes:
    if fetches(blobs):
        return await blobs.fetch(cid)
    return await anyio.to_thread.run_sync(blobs.get, cid)
