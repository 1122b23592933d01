"""Errors of the verification-chain side; each message says what to do."""

from __future__ import annotations

from medchain.types import MedchainError


class AnchorError(MedchainError):
    """Base of the anchoring errors."""

    code = "anchor_error"


class EthKeyError(AnchorError):
    """The node's Ethereum key file is missing, unreadable or damaged."""

    code = "bad_eth_key"


class AnchorSettingsError(AnchorError):
    """The `anchor` section of a node's config.json is wrong."""

    code = "bad_anchor_settings"


class VerificationChainUnavailable(AnchorError):
    """The Ethereum JSON-RPC endpoint did not answer (or answered nonsense)."""

    code = "verification_chain_unavailable"


class AnchorRejected(AnchorError):
    """The anchor contract reverted a transaction; `reason` is its revert reason."""

    code = "anchor_rejected"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AlreadyAnchored(AnchorRejected):
    """The same checkpoint is already anchored: a sender that lost the race may ignore it."""

    code = "already_anchored"


class GanacheError(AnchorError):
    """The local verification chain (Ganache) is not installed or did not start."""

    code = "ganache_error"
