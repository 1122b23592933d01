"""The node itself: status, health (for load balancers and the devnet) and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from medchain.api._deps import Service
from medchain.api._models import HealthModel, NodeStatusModel

router = APIRouter(tags=["node"])


@router.get("/v1/status", summary="What the node reports about itself")
async def status(service: Service) -> NodeStatusModel:
    return NodeStatusModel.of(service.status())


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
