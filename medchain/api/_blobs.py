"""The blob store over HTTP: encrypted record bodies by CID. Blob I/O runs in a
worker thread (hashing and fsync of up to the size limit must not stall the loop).
Reads fall back to the node's peers when its store can (FetchingBlobStore)."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Request, Response

from medchain.api._errors import ApiError
from medchain.api._models import BlobStoredModel
from medchain.api._service import FetchingBlobStore, NodeService
from medchain.offchain import BlobNotFound, BlobStore, cid_for, parse_cid

OCTETS = "application/octet-stream"
CidPath = Annotated[str, Path(description="CIDv1, raw, sha2-256, base32 (bafkrei...).")]
_IMMUTABLE = "public, max-age=31536000, immutable"


def blob_routes(service: NodeService) -> APIRouter:
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


async def _read(blobs: BlobStore, cid: str) -> bytes:
    if isinstance(blobs, FetchingBlobStore):
        return await blobs.fetch(cid)
    return await anyio.to_thread.run_sync(blobs.get, cid)
