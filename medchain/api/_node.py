"""The node itself: status, its mempool, health (for load balancers and the devnet) and
metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from medchain.api._deps import Service
from medchain.api._models import HealthModel, MempoolModel, NodeStatusModel, PendingTxModel

router = APIRouter(tags=["node"])


@router.get("/v1/status", summary="What the node reports about itself")
async def status(service: Service) -> NodeStatusModel:
    return NodeStatusModel.of(service.status())


MAX_MEMPOOL_SHOWN = 500


@router.get("/v1/mempool", summary="The transactions waiting in this node's mempool")
async def mempool(
    service: Service,
    limit: Annotated[int, Query(ge=0, le=MAX_MEMPOOL_SHOWN, description="How many to list.")] = 50,
) -> MempoolModel:
    """How many transactions wait, their size, and the first `limit` of them, oldest
    first: sender, method, nonce and fee (what every node gossips; their arguments are
    in the block that commits them)."""
    current = service.status()
    shown = [PendingTxModel.of(tx) for tx in service.pending_txs(limit)]
    return MempoolModel(count=current.mempool_txs, bytes=current.mempool_bytes, txs=shown)


@router.get(
    "/health",
    summary="Liveness and connectivity",
    responses={503: {"model": HealthModel, "description": "Up, but cut off from its peers."}},
)
async def health(response: Response, service: Service) -> HealthModel:
    """200 while the node is up and connected to a peer, or has none configured
    (a node alone by design); 503 when every configured peer is unreachable."""
    current = service.status()
    connected = sum(p.connected for p in current.peers)
    cut_off = bool(current.peers) and not connected
    body = HealthModel(
        status="unhealthy" if cut_off else "ok",
        reason="no configured peer is connected" if cut_off else "",
        height=current.height,
        syncing=current.syncing,
        peers_connected=connected,
        peers_configured=len(current.peers),
    )
    if cut_off:
        response.status_code = 503
    return body


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(service: Service) -> Response:
    return Response(generate_latest(service.metrics_registry), media_type=CONTENT_TYPE_LATEST)
