"""The pending-transaction pool: checked on arrival, deduplicated, kept in arrival
order, bounded, and checked again after every commit."""

from medchain.mempool._errors import AnonymousQueueFull, MempoolFull, SenderQueueFull
from medchain.mempool._pool import (
    DEFAULT_MAX_ANONYMOUS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PER_SENDER,
    DEFAULT_MAX_TXS,
    Mempool,
)

__all__ = [
    "DEFAULT_MAX_ANONYMOUS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PER_SENDER",
    "DEFAULT_MAX_TXS",
    "AnonymousQueueFull",
    "Mempool",
    "MempoolFull",
    "SenderQueueFull",
]
