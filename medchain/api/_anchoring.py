"""The verification chain as the node sees it: where it anchors, what is anchored,
and the passive check of the node's own blocks; plus the stored block ids an auditor
compares with the anchors it reads from Ethereum itself (`medchain verify`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from medchain.api._deps import Chain, Service
from medchain.api._models import Height, Hex, fields_of

MAX_HEIGHTS = 10_000


class AnchoringModel(BaseModel):
    """How the node anchors (its settings, but not its key file) and how far it has
    got; for a node that does not anchor, `configured` false and the rest empty."""

    configured: bool = Field(description="False if the node does not anchor.")
    rpc_url: str = ""
    eth_chain_id: int = 0
    contract: str = ""
    finality: str = Field(default="", description="'finalized', or a number of confirmations.")
    sender: bool = Field(default=False, description="This node sends anchors.")
    anchored_height: int = 0
    final_height: int = 0
    anchors_sent: int = 0
    last_error: str = ""
    checked_ms: int = 0
    report: dict[str, Any] | None = Field(
        default=None, description="The latest passive verification of the node's own blocks."
    )


class HeightsModel(BaseModel):
    heights: list[Height] = Field(max_length=MAX_HEIGHTS)


class BlockIdModel(BaseModel):
    hash: Hex
    state_root: Hex


class BlockIdsModel(BaseModel):
    blocks: dict[int, BlockIdModel] = Field(
        description="Block id and state root by height (from the stored headers), for "
        "the heights the node holds."
    )


router = APIRouter(tags=["verification chain"])


@router.get("/v1/anchoring", summary="Anchoring and passive verification")
async def anchoring(service: Service) -> AnchoringModel:
    status = service.anchoring_status()
    if status is None:
        return AnchoringModel(configured=False)
    return AnchoringModel.model_validate(
        {
            **fields_of(status.settings),
            **fields_of(status),
            "configured": True,
            "finality": str(status.settings.finality),
            "report": None if status.report is None else status.report.to_json(),
        }
    )


@router.post("/v1/chain/hashes", summary="Stored block ids at the given heights")
async def block_ids(body: HeightsModel, chain: Chain) -> BlockIdsModel:
    """At most 10,000 heights per request, each from 0 to 2^63 - 1; heights the
    node does not hold are left out."""
    found = chain.block_ids(body.heights)
    blocks = {h: {"hash": i, "state_root": r} for h, (i, r) in sorted(found.items())}
    return BlockIdsModel.model_validate({"blocks": blocks})
