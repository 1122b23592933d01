"""The blob store over HTTP: encrypted record bodies by CID, one at a time or many in
one request (an edge gateway stores a bundle per patient for every batch). Blob I/O
runs in a worker thread (hashing and fsync of up to the size limit must not stall the
loop). Reads fall back to the node's peers when its store can (FetchingBlobStore)."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Request, Response

from medchain.api._errors import ApiError
from medchain.api._models import BlobsStoredModel, BlobStoredModel
from medchain.api._service import FetchingBlobStore, NodeService
from medchain.offchain import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    cid_for,
    parse_cid,
)
from medchain.types import DecodeError, decode

OCTETS = "application/octet-stream"
CidPath = Annotated[str, Path(description="CIDv1, raw, sha2-256, base32 (bafkrei...).")]
_IMMUTABLE = "public, max-age=31536000, immutable"

DEFAULT_MAX_BLOB_BATCH_BYTES = 16 * 1024 * 1024
"""Largest POST /v1/blobs/batch body, the blobs and their encoding together."""
MAX_BLOB_BATCH_BLOBS = 1_000
"""Most blobs one POST /v1/blobs/batch may hold."""


def blob_routes(service: NodeService, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> APIRouter:
    """`max_blob_bytes` bounds each blob of a batch as the body limit bounds PUT's."""
    router = APIRouter(prefix="/v1/blobs", tags=["blobs"])

    @router.put(
        "",
        status_code=201,
        summary="Store a blob",
        responses={
            200: {"model": BlobStoredModel, "description": "Already stored."},
            201: {"description": "Stored."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def put_blob(request: Request, response: Response) -> BlobStoredModel:
        """Store the raw request body; its CID (the SHA-256 of the bytes) names it.
        Storing the same bytes again changes nothing."""
        data = await request.body()
        blobs = service.blobs

        def store() -> tuple[str, bool]:
            existed = blobs.has(cid_for(data))
            return blobs.put(data), existed

        cid, existed = await anyio.to_thread.run_sync(store)
        if existed:
            response.status_code = 200
        return BlobStoredModel(cid=cid)

    @router.post(
        "/batch",
        summary="Store many blobs",
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The blobs as the canonical encoding of a tuple[bytes, ...] "
                "(an RLP list of byte strings): medchain.types.encode(blobs, tuple[bytes, ...]).",
                "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def put_blobs(request: Request) -> BlobsStoredModel:
        """Store each blob as PUT /v1/blobs does (the same per-blob limit; bytes already
        stored change nothing) and answer their CIDs in order. At most 1,000 blobs and
        16 MiB of body (by default) per request; a batch with a blob over the per-blob
        limit stores none of them."""
        data = await request.body()
        blobs = service.blobs

        def store() -> list[str]:
            return blobs.put_many(_batch(data, max_blob_bytes))

        return BlobsStoredModel(cids=await anyio.to_thread.run_sync(store))

    @router.get(
        "/{cid}",
        summary="Fetch a blob",
        response_class=Response,
        responses={200: {"content": {OCTETS: {}}, "description": "The blob's bytes."}},
    )
    async def get_blob(cid: CidPath) -> Response:
        """The bytes named by `cid`, checked against it before they are sent."""
        parse_cid(cid)
        data = await _read(service.blobs, cid)
        return Response(
            data, media_type=OCTETS, headers={"ETag": f'"{cid}"', "Cache-Control": _IMMUTABLE}
        )

    @router.head("/{cid}", summary="Whether the node holds a blob", response_class=Response)
    async def has_blob(cid: CidPath) -> Response:
        """200 when the node holds the blob or, on a node with peers, fetched it from one."""
        parse_cid(cid)
        blobs = service.blobs
        if not await anyio.to_thread.run_sync(blobs.has, cid):
            if not isinstance(blobs, FetchingBlobStore):
                raise ApiError(404, BlobNotFound.code, f"blob {cid} is not stored on this node")
            await blobs.fetch(cid)
        return Response(media_type=OCTETS, headers={"ETag": f'"{cid}"'})

    return router


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


async def _read(blobs: BlobStore, cid: str) -> bytes:
    if isinstance(blobs, FetchingBlobStore):
        return await blobs.fetch(cid)
    return await anyio.to_thread.run_sync(blobs.get, cid)
