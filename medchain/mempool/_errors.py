"""Why the mempool turned a valid transaction away: it has no room for it now."""

from __future__ import annotations

from medchain.types import MedchainError


class MempoolFull(MedchainError):
    """No room for another transaction until blocks drain the pool: retry shortly."""

    code = "mempool_full"


class SenderQueueFull(MempoolFull):
    """One account holds as many pending transactions as an account may."""

    code = "sender_queue_full"


class AnonymousQueueFull(MempoolFull):
    """As many anonymous transactions as may be pending are pending (they pay no fee)."""

    code = "anonymous_queue_full"
