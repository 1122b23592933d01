"""What a route needs from its app, as FastAPI dependencies. `create_api` keeps the
node's service and the API's own limits in `app.state`, so the routers are module-level
and each handler a plain function that names what it uses. The dependencies are
coroutines: they run on the event loop, like the handlers, never in a worker thread
(the stores are single-thread SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from medchain.api._limits import client_of
from medchain.api._service import NodeService
from medchain.node import ChainQueries


@dataclass(frozen=True)
class ApiState:
    """What `create_api` was given; stored as `app.state.api`."""

    service: NodeService
    max_blob_bytes: int
    """The most each blob of POST /v1/blobs/batch may hold."""


def install(app: FastAPI, state: ApiState) -> None:
    app.state.api = state


async def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def _service(state: Annotated[ApiState, Depends(_state)]) -> NodeService:
    return state.service


async def _chain(service: Annotated[NodeService, Depends(_service)]) -> ChainQueries:
    return service.chain


async def _client(request: Request) -> str:
    return client_of(request.scope)


async def _max_blob_bytes(state: Annotated[ApiState, Depends(_state)]) -> int:
    return state.max_blob_bytes


Service = Annotated[NodeService, Depends(_service)]
"""The node the API serves."""
Chain = Annotated[ChainQueries, Depends(_chain)]
"""The node's committed state."""
Client = Annotated[str, Depends(_client)]
"""The address the request comes from, whose budget pays for what it submits."""
MaxBlobBytes = Annotated[int, Depends(_max_blob_bytes)]
"""The per-blob limit of a bulk upload."""
