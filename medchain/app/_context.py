"""What a contract call may know: the block it runs in and who sent it — never the
wall clock, never randomness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medchain.crypto import format_address
from medchain.types import Attribute, ChainParams, Event


@dataclass(frozen=True, slots=True)
class BlockContext:
    chain_id: str
    height: int
    time_ms: int
    proposer: bytes
    params: ChainParams


@dataclass(slots=True)
class Call:
    block: BlockContext
    sender: bytes
    """Address of the signer."""
    sender_key: bytes
    """Ed25519 public key of the signer."""
    tx_id: bytes
    nonce: int
    events: list[Event] = field(default_factory=list)
    key_image: bytes = b""
    """Anonymous calls: the ring signature's key image (the sender is empty)."""

    def emit(self, kind: str, **attributes: str | bytes | int) -> None:
        """Record an event; bytes of address size are shown as addresses, other bytes as hex."""
        self.events.append(make_event(kind, **attributes))


def make_event(kind: str, **attributes: str | bytes | int) -> Event:
    """An event with its attributes sorted by name, shown as `Call.emit` shows them."""
    return Event(kind, tuple(Attribute(k, _show(v)) for k, v in sorted(attributes.items())))


def _show(value: str | bytes | int) -> str:
    if isinstance(value, bytes):
        return format_address(value) if len(value) == 20 else value.hex()
    return str(value)


Handler = Callable[[Any, Call, Any], None]
"""A contract method: (state, call, decoded arguments) -> None; raises ContractError."""
Methods = dict[str, tuple[type[Any], Handler]]
