"""Node-to-node transport: framed messages over mutually authenticated TLS 1.3 between
the nodes of an allow-list, each identified by its Ed25519 key."""

from medchain.p2p._refusals import Refusal, RefusalLog, address_group
from medchain.p2p._tls import (
    BadCertificate,
    certificate_key,
    client_context,
    node_certificate,
    server_context,
)
from medchain.p2p._transport import LinkInfo, PeerInfo, Transport, TransportStats

__all__ = [
    "BadCertificate",
    "LinkInfo",
    "PeerInfo",
    "Refusal",
    "RefusalLog",
    "Transport",
    "TransportStats",
    "address_group",
    "certificate_key",
    "client_context",
    "node_certificate",
    "server_context",
]
