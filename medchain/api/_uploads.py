"""Record uploads in one request: the sealed body and the signed `records.create` (or
`records.add_version`) naming it. The node checks that the body matches the CID and
hash the transaction names before it stores anything, then admits the transaction:
one round trip instead of two, and no stored blob that no admitted transaction names
unless the transaction is refused after the check."""

from __future__ import annotations

import hashlib

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from medchain.api import _parse as parse
from medchain.api._errors import ApiError
from medchain.api._limits import client_of
from medchain.api._models import Hex, hex_of
from medchain.api._service import NodeService
from medchain.app import AddVersionArgs, CreateRecordArgs
from medchain.offchain import cid_from_digest
from medchain.types import DecodeError, decode, tx_id

_RECORD_METHODS: dict[str, type[CreateRecordArgs] | type[AddVersionArgs]] = {
    "records.create": CreateRecordArgs,
    "records.add_version": AddVersionArgs,
}


class UploadBody(BaseModel):
    tx: Hex = Field(description="Hex of the signed records.create or records.add_version.")
    ciphertext: Hex = Field(description="Hex of the sealed record body the transaction names.")


class UploadModel(BaseModel):
    tx_hash: Hex
    cid: str = Field(description="Where the body is stored (CIDv1, raw, sha2-256).")
    status: str = Field(description="`pending`: stored and admitted to the mempool.")


def upload_routes(service: NodeService) -> APIRouter:
    router = APIRouter(prefix="/v1/records", tags=["records"])

    @router.post("", status_code=202, summary="Upload a record version (body + transaction)")
    async def upload(body: UploadBody, request: Request) -> UploadModel:
        """Store the sealed body and admit the transaction that names it. Refused with
        400 if the body does not match the transaction's CID and hash, or if the
        transaction is not a record upload; the transaction's own refusals are as for
        POST /v1/txs."""
        tx = parse.transaction(body.tx, service.genesis.params)
        kind = _RECORD_METHODS.get(tx.method)
        if kind is None:
            raise ApiError(
                400,
                "not_a_record_upload",
                f"this endpoint takes records.create or records.add_version, not {tx.method}; "
                "submit other transactions to POST /v1/txs",
            )
        try:
            args = decode(kind, tx.args)
        except DecodeError as exc:
            raise ApiError(400, "malformed_args", f"the {tx.method} arguments: {exc}") from None
        ciphertext = parse.hex_bytes(body.ciphertext, "ciphertext")
        digest = hashlib.sha256(ciphertext).digest()  # what a raw sha2-256 CID names
        if digest != args.ciphertext_hash or cid_from_digest(digest) != args.cid:
            raise ApiError(
                400,
                "ciphertext_mismatch",
                "the ciphertext does not match the CID and hash the transaction names; "
                "send the sealed body the transaction was built for",
            )
        await anyio.to_thread.run_sync(service.blobs.put, ciphertext)
        await service.submit(tx, client_of(request.scope))
        return UploadModel(tx_hash=hex_of(tx_id(tx)), cid=args.cid, status="pending")

    return router
