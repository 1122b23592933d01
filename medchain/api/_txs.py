"""Submitting transactions and following them to their receipt."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel

from medchain.api import _parse as parse
from medchain.api._deps import Chain, Client, Service
from medchain.api._errors import ApiError
from medchain.api._models import (
    BatchItemModel,
    BatchResultModel,
    ErrorDetail,
    ReceiptModel,
    TxBatchBody,
    TxBody,
    TxStatusModel,
    hex_of,
)
from medchain.api._service import NodeService
from medchain.node import ChainQueries
from medchain.types import MedchainError, Receipt, Tx, tx_id

MAX_WAIT_S = 60.0
"""Longest a request may wait for its transaction to commit."""
DEFAULT_WAIT_S = 10.0
WaitQuery = Annotated[
    bool, Query(description="Answer once the transaction is committed (or timeout_s).")
]
TimeoutQuery = Annotated[
    float, Query(gt=0, le=MAX_WAIT_S, description="How long `wait` waits, in seconds.")
]
_YIELD_EVERY = 100
"""Batch parsing gives the loop back this often, so consensus is not starved."""


async def _commit_wait(
    wait: WaitQuery = False, timeout_s: TimeoutQuery = DEFAULT_WAIT_S
) -> float | None:
    return timeout_s if wait else None


CommitWait = Annotated[float | None, Depends(_commit_wait)]
"""Seconds to wait for the transaction to commit before answering; None: answer at once."""

router = APIRouter(prefix="/v1/txs", tags=["transactions"])


def pending_or_committed(
    model: type[BaseModel], committed: str, pending: str, more: dict[int, Any] | None = None
) -> dict[str, Any]:
    """Options of a POST route answering 202 while its transaction is pending and 200
    with `model` once it is committed (see `tx_status`); `more`: its other responses."""
    answers = {200: {"model": model, "description": committed}, 202: {"description": pending}}
    return {"status_code": 202, "responses": {**answers, **(more or {})}}


def tx_status(
    chain: ChainQueries, tx_hash: bytes, receipt: Receipt | None, response: Response
) -> dict[str, Any]:
    """The fields saying where a transaction is (pending; or committed, where, and its
    receipt), and the status saying it: 202 pending, 200 committed."""
    if receipt is None:
        return {"tx_hash": tx_hash, "status": "pending"}
    response.status_code = 200
    location = chain.tx_location(tx_hash)
    height, index = location if location is not None else (None, None)
    return {
        "tx_hash": tx_hash,
        "status": "committed",
        "height": height,
        "index": index,
        "receipt": ReceiptModel.of(receipt),
    }


@router.post(
    "",
    summary="Submit a signed transaction",
    **pending_or_committed(
        TxStatusModel, "Committed (already, or while waiting).", "Pending in the mempool."
    ),
)
async def submit(
    body: TxBody, response: Response, service: Service, client: Client, commit_wait: CommitWait
) -> TxStatusModel:
    """Admit a transaction to the mempool and pass it on to the other nodes.

    Submitting it again is harmless: a pending transaction answers 202, a committed
    one 200 with its receipt. A refused transaction is a 4xx naming the reason
    (409 for a used nonce), a full mempool 503 with Retry-After, and 429 with
    Retry-After for a client whose forged or refused transactions made the node
    verify more signatures than its budget allows."""
    tx = parse.transaction(body.tx, service.genesis.params)
    tx_hash = tx_id(tx)
    receipt = service.chain.receipt(tx_hash)
    if receipt is None:
        await service.submit(tx, client)
        if commit_wait is not None:
            receipt = await service.wait_committed(tx_hash, commit_wait)
    return TxStatusModel.model_validate(tx_status(service.chain, tx_hash, receipt, response))


@router.post("/batch", summary="Submit many transactions")
async def submit_batch(body: TxBatchBody, service: Service, client: Client) -> BatchResultModel:
    """Admit each transaction on its own (for load generators): one refusal stops
    nothing, and each result says what happened to its transaction. For the whole
    batch: 400 `too_many_anonymous` past the node's limit of anonymous transactions
    a request (16 by default), 429 and 503 as for POST /v1/txs."""
    results: list[BatchItemModel | None] = []
    parsed: list[tuple[int, Tx]] = []
    for number, text in enumerate(body.txs, start=1):
        item = _parse_one(service, text)
        if isinstance(item, BatchItemModel):
            results.append(item)
        else:
            parsed.append((len(results), item))
            results.append(None)
        if number % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
    outcomes = await service.submit_batch([tx for _, tx in parsed], client)
    for (index, tx), outcome in zip(parsed, outcomes, strict=True):
        tx_hash = tx_id(tx)
        if isinstance(outcome, MedchainError) and service.chain.receipt(tx_hash) is not None:
            results[index] = _already_committed(tx_hash)  # an earlier copy in the batch
        else:
            results[index] = _admitted(tx_hash, outcome)
    done = [r for r in results if r is not None]
    return BatchResultModel(accepted=sum(r.accepted for r in done), results=done)


@router.get(
    "/{tx_hash}",
    summary="A transaction's status",
    responses={404: {"description": "Neither committed nor pending on this node."}},
)
async def get_tx(
    tx_hash: Annotated[str, Path(description="The transaction hash (hex).")],
    response: Response,
    service: Service,
    chain: Chain,
) -> TxStatusModel:
    raw = parse.tx_hash(tx_hash)
    receipt = chain.receipt(raw)
    if receipt is None and not service.is_pending(raw):
        raise ApiError(
            404,
            "unknown_tx",
            f"transaction {raw.hex()} is neither committed nor pending on this node; "
            "submit it (POST /v1/txs), or ask the node it was sent to",
        )
    return TxStatusModel.model_validate(tx_status(chain, raw, receipt, response))


def _parse_one(service: NodeService, text: str) -> BatchItemModel | Tx:
    """The transaction, or the result of one that is malformed or already committed."""
    try:
        tx = parse.transaction(text, service.genesis.params)
    except (ApiError, MedchainError) as exc:
        return BatchItemModel(tx_hash=None, accepted=False, error=_detail(exc.code, exc.message))
    tx_hash = tx_id(tx)
    if service.chain.receipt(tx_hash) is not None:
        return _already_committed(tx_hash)
    return tx


def _already_committed(tx_hash: bytes) -> BatchItemModel:
    committed = _detail("already_committed", "this transaction is already committed")
    return BatchItemModel(tx_hash=hex_of(tx_hash), accepted=False, error=committed)


def _admitted(tx_hash: bytes, outcome: bool | MedchainError) -> BatchItemModel:
    if isinstance(outcome, MedchainError):
        refused = _detail(outcome.code, outcome.message)
        return BatchItemModel(tx_hash=hex_of(tx_hash), accepted=False, error=refused)
    error = None if outcome else _detail("already_pending", "this transaction is already pending")
    return BatchItemModel(tx_hash=hex_of(tx_hash), accepted=outcome, error=error)


def _detail(code: str, message: str) -> ErrorDetail:
    return ErrorDetail(code=code, message=message)
