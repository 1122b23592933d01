"""Body uploads with their transaction: the sealed body and the signed transaction that
names it (records.create, records.add_version, research.grant, anon.submit), in one
request. It is the only way a client stores a body on a node: the body must match
the CID and hash the transaction names, the uploader's quota of bodies not yet named
is reserved, and the transaction is admitted (signature, nonce, state checks) before
the body is stored, so a refused transaction leaves nothing behind.

Sending the same transaction and body again is harmless and completes an upload whose
answer was lost: a transaction already pending or committed is not admitted twice,
and its body is stored (again)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from medchain.api import _parse as parse
from medchain.api._deps import Client, Service
from medchain.api._errors import ApiError
from medchain.api._models import Hex, ReceiptModel
from medchain.api._service import NodeService
from medchain.api._txs import CommitWait, pending_or_committed, tx_status
from medchain.app import UPLOADED_BODY_METHODS, BodyMismatch, body_named
from medchain.node import OverQuota, uploader_of
from medchain.types import DecodeError, MedchainError, Tx, tx_id

_METHODS = ", ".join(sorted(UPLOADED_BODY_METHODS))


class UploadBody(BaseModel):
    tx: Hex = Field(description=f"Hex of the signed transaction naming the body: {_METHODS}.")
    ciphertext: Hex = Field(description="Hex of the sealed body the transaction names.")


class UploadModel(BaseModel):
    tx_hash: Hex
    cid: str = Field(description="Where the body is stored (CIDv1, raw, sha2-256).")
    status: Literal["pending", "committed"] = Field(
        description="`pending`: stored and admitted to the mempool; `committed`: stored, "
        "and the transaction is in a block (its receipt says whether the call succeeded)."
    )
    height: int | None = Field(default=None, description="Block height, once committed.")
    index: int | None = Field(default=None, description="Position in the block, once committed.")
    receipt: ReceiptModel | None = None


router = APIRouter(prefix="/v1/records", tags=["records"])


def _refused(service: NodeService, reason: str, status: int, code: str, message: str) -> ApiError:
    """An upload refused, counted by `reason` in the body metrics."""
    service.bodies.refused(reason)
    return ApiError(status, code, message)


@router.post(
    "",
    summary="Upload a body with the transaction that names it",
    **pending_or_committed(
        UploadModel,
        "Stored; the transaction is committed.",
        "Stored; the transaction is pending.",
        {429: {"description": "The uploader's quota of bodies not yet named is used up."}},
    ),
)
async def upload(
    body: UploadBody, response: Response, service: Service, client: Client, commit_wait: CommitWait
) -> UploadModel:
    """Admit the transaction, then store the body it names. Refused with 400 if the
    body is not the one the transaction names (by CID and hash) or the transaction
    names no single body, 429 when the uploader (the sender's account; all anonymous
    submissions share one bucket) already has its quota of bodies that no committed
    transaction names; the transaction's own refusals are as for POST /v1/txs, and
    store nothing."""
    tx, ciphertext, cid = _parse_upload(service, body)
    tx_hash = tx_id(tx)
    receipt = service.chain.receipt(tx_hash)

    async def admit() -> None:
        if receipt is None:
            # False when already pending: a resend
            await service.submit(tx, client)

    try:
        await service.bodies.upload(uploader_of(tx), [ciphertext], admit)
    except OverQuota:
        raise
    except MedchainError:
        service.bodies.refused("tx_refused")
        raise
    if receipt is None and commit_wait is not None:
        receipt = await service.wait_committed(tx_hash, commit_wait)
    status = tx_status(service.chain, tx_hash, receipt, response)
    return UploadModel.model_validate({**status, "cid": cid})


def _parse_upload(service: NodeService, body: UploadBody) -> tuple[Tx, bytes, str]:
    """The transaction, the body and the CID it names; a refusal (counted) for anything
    else."""
    try:
        tx = parse.transaction(body.tx, service.genesis.params)
    except (ApiError, MedchainError):
        service.bodies.refused("malformed")
        raise
    if tx.method not in UPLOADED_BODY_METHODS:
        raise _refused(
            service,
            "malformed",
            400,
            "not_a_record_upload",
            f"this endpoint takes a transaction and one body it names ({_METHODS}), not "
            f"{tx.method}; submit other transactions to POST /v1/txs",
        )
    try:
        ciphertext = parse.hex_bytes(body.ciphertext, "ciphertext")
        named = body_named(tx, ciphertext)
    except DecodeError as exc:
        raise _refused(
            service, "malformed", 400, "malformed_args", f"the {tx.method} arguments: {exc}"
        ) from None
    except BodyMismatch as exc:
        raise _refused(service, "body_mismatch", 400, exc.code, exc.message) from None
    except ApiError:
        service.bodies.refused("malformed")
        raise
    return tx, ciphertext, named.cid
