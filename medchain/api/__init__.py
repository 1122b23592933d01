"""The node's HTTP API (FastAPI, OpenAPI at /docs) over the `NodeService` a node
implements, and `ApiServer` to serve it inside the node's event loop."""

from medchain.api._app import DEFAULT_MAX_BODY_BYTES, create_api
from medchain.api._blobs import DEFAULT_MAX_BLOB_BATCH_BYTES, MAX_BLOB_BATCH_BLOBS
from medchain.api._devices import MAX_DEVICE_LOOKUP
from medchain.api._disclosures import (
    DisclosureModel,
    DisclosuresModel,
    HashesModel,
    disclosure_log_routes,
)
from medchain.api._errors import ApiError, install_route_error_handlers
from medchain.api._models import MAX_BATCH_TXS
from medchain.api._reads import request_target
from medchain.api._server import ApiServer, ApiServerError
from medchain.api._service import NodeService
from medchain.api._txs import DEFAULT_WAIT_S, MAX_WAIT_S

__all__ = [
    "DEFAULT_MAX_BLOB_BATCH_BYTES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_WAIT_S",
    "MAX_BATCH_TXS",
    "MAX_BLOB_BATCH_BLOBS",
    "MAX_DEVICE_LOOKUP",
    "MAX_WAIT_S",
    "ApiError",
    "ApiServer",
    "ApiServerError",
    "DisclosureModel",
    "DisclosuresModel",
    "HashesModel",
    "NodeService",
    "create_api",
    "disclosure_log_routes",
    "install_route_error_handlers",
    "request_target",
]
