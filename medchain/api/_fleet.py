"""Read-only endpoints of the edge tier as a whole: every gateway, and how many devices
there are by kind and by state in force. The devices contract stores both by key
only, so these come from the node's index of its blocks (`FleetIndex`), which lists
what the committed state holds; a node that joined from a snapshot lists what was
registered from `complete_from` on until it has fetched the older blocks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from medchain.api._deps import Chain
from medchain.api._devices import GatewayModel
from medchain.api._models import FromChain, Name

MAX_GATEWAY_PAGE = 500
"""Most gateways one GET /v1/gateways lists."""


class DeviceCountModel(FromChain):
    kind: Name
    state: Name = Field(description="The state in force at the counts' `height`.")
    count: int


class FleetModel(FromChain):
    """The edge tier at the latest height, from this node's index of its blocks."""

    height: int = Field(description="The height the devices' states in force are read at.")
    complete_from: int = Field(
        description="The lowest height indexed: 0 when every gateway and device is counted; "
        "above 0 on a node that joined from a snapshot and is still fetching older blocks."
    )
    gateways_active: int
    gateways_revoked: int
    devices: list[DeviceCountModel] = Field(
        description="One per kind and state with at least one device, by kind then state."
    )
    device_total: int


class ListedGatewayModel(GatewayModel):
    """A gateway as the list shows it: what GET /v1/gateways/{address} answers, and
    whether its organisation is still a member (a gateway acts only while it is)."""

    org_member: bool = Field(description="Whether `org_id` is a member organisation now.")


class GatewayPageModel(BaseModel):
    total: int = Field(description="Gateways listed (revoked ones too).")
    start: int
    complete_from: int = Field(description="As in GET /v1/fleet.")
    gateways: list[ListedGatewayModel] = Field(description="In registration order.")


router = APIRouter(prefix="/v1", tags=["devices"])


@router.get("/fleet", summary="Gateways and devices counted")
async def fleet(chain: Chain) -> FleetModel:
    """How many gateways are active and revoked, and how many devices there are of
    each kind in each state in force (a penalty restriction past its end counts as
    active), at the latest height."""
    counts = chain.fleet_counts()
    return FleetModel.of(counts, device_total=counts.device_total)


@router.get("/gateways", summary="Every edge gateway, a page at a time")
async def gateways(
    chain: Chain,
    start: Annotated[int, Query(ge=0, le=2**31, description="Position of the first.")] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_GATEWAY_PAGE, description="How many.")] = 50,
) -> GatewayPageModel:
    """The gateways in registration order, revoked ones too, with their organisation
    and how many batches each committed."""
    total, found = chain.gateways(start, count)
    members = {o.org_id for o in chain.member_organisations()}
    listed = [ListedGatewayModel.of(g, org_member=g.org_id in members) for g in found]
    return GatewayPageModel(
        total=total,
        start=start,
        complete_from=chain.fleet_complete_from(),
        gateways=listed,
    )
