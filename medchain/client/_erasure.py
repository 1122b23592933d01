"""Erasing a record (its patient, or their `grant` proxy), and the clear error a later
read of an erased record meets instead of a missing ciphertext."""

from __future__ import annotations

from datetime import UTC, datetime

from medchain.app import EraseArgs, Record, RecordErased
from medchain.client._account import AccountCore
from medchain.crypto import format_address
from medchain.types import Receipt


def erased_on(record: Record) -> str:
    """When the record was erased, as an ISO date and time (UTC)."""
    return datetime.fromtimestamp(record.erased_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def refuse_erased(record: Record) -> None:
    """RecordErased, saying when and by whom, if the record was erased."""
    if record.erased_height:
        raise RecordErased(
            f"record {record.record_id.hex()} was erased by {format_address(record.erased_by)} "
            f"on {erased_on(record)} (height {record.erased_height}): its ciphertexts are "
            "deleted from every node and it cannot be read any more"
        )


class ErasureActions(AccountCore):
    """A mixin of MedchainClient: erasing a record."""

    def erase(self, record_id: bytes, reason: str = "") -> Receipt:
        """The owner, or their `grant` proxy: erase the record. Every node deletes its
        ciphertexts and its wraps leave the state; what a reader already decrypted,
        and the history in old blocks, stay (see docs/PRIVACY.md, "Erasure")."""
        return self.send("records.erase", EraseArgs(record_id, reason))
