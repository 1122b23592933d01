"""Transactions as the explorer shows them: the method, who sent it, its arguments in
words (addresses as mc1..., long bytes shortened) and what its receipt says it did."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from medchain.app import ANONYMOUS_METHODS, METHODS
from medchain.crypto import address_from_public_key, format_address
from medchain.types import DecodeError, Receipt, Tx, decode, tx_id

ADDRESS_SIZE = 20
SHOWN_BYTES = 8
"""Bytes of a long value shown (as hex) before an ellipsis."""
MAX_SHOWN_ITEMS = 6


@dataclass(frozen=True)
class TxView:
    tx_hash: str
    method: str
    sender: str
    arguments: tuple[tuple[str, str], ...]
    outcome: str
    effects: tuple[str, ...]


def show_value(value: Any) -> str:
    """A value of a transaction's arguments in a few words."""
    if isinstance(value, bytes):
        if len(value) == ADDRESS_SIZE:
            return format_address(value)
        if len(value) > SHOWN_BYTES:
            return f"{value[:SHOWN_BYTES].hex()}… ({len(value)} bytes)"
        return value.hex() or "—"
    if isinstance(value, tuple | list):
        shown = [show_value(item) for item in value[:MAX_SHOWN_ITEMS]]
        more = len(value) - len(shown)
        return "[" + ", ".join(shown) + (f", … {more} more" if more else "") + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__
    return str(value)


def _arguments(tx: Tx) -> tuple[tuple[str, str], ...]:
    entry = METHODS.get(tx.method)
    if entry is None:
        return (("arguments", f"{len(tx.args)} bytes of an unknown method"),)
    try:
        args = decode(entry[0], tx.args)
    except DecodeError:
        return (("arguments", "not decodable"),)
    return tuple((f.name, show_value(getattr(args, f.name))) for f in dataclasses.fields(args))


def _sender(tx: Tx) -> str:
    if tx.method in ANONYMOUS_METHODS:
        return "anonymous (ring signature)"
    return format_address(address_from_public_key(tx.sender))


def _effects(receipt: Receipt | None) -> tuple[str, ...]:
    if receipt is None:
        return ()
    return tuple(
        event.kind + "".join(f" {a.key}={a.value}" for a in event.attributes)
        for event in receipt.events
    )


def tx_view(tx: Tx, receipt: Receipt | None) -> TxView:
    if receipt is None:
        outcome = "no receipt"
    elif receipt.ok:
        outcome = "ok"
    else:
        outcome = f"refused ({receipt.code}): {receipt.message}"
    return TxView(
        tx_hash=tx_id(tx).hex(),
        method=tx.method,
        sender=_sender(tx),
        arguments=_arguments(tx),
        outcome=outcome,
        effects=_effects(receipt),
    )
