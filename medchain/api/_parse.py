"""Reading identifiers out of paths and bodies: hex, addresses, CIDs, transactions.
Each refusal is a 400 that shows the expected form."""

from __future__ import annotations

from medchain.api._errors import ApiError
from medchain.app import TxTooLarge, decode_tx
from medchain.crypto import InvalidAddress, parse_address
from medchain.types import ChainParams, Tx

RECORD_ID_SIZE = 16
TX_HASH_SIZE = 32


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def hex_bytes(text: str, what: str, size: int | None = None) -> bytes:
    """`text` as bytes: hex digits, optionally after 0x."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    expected = f"{size * 2} hex characters ({size} bytes)" if size else "hex"
    try:
        if not (digits.isascii() and digits.isalnum()):  # fromhex would skip spaces
            raise ValueError
        raw = bytes.fromhex(digits)
    except ValueError:
        raise ApiError(
            400, "invalid_hex", f"{what} must be {expected}, got {_shown(text)}"
        ) from None
    if size is not None and len(raw) != size:
        raise ApiError(400, "invalid_hex", f"{what} must be {expected}, got {len(raw)} bytes")
    return raw


def address(text: str, what: str = "address") -> bytes:
    """A bech32 account address (mc1...)."""
    try:
        return parse_address(text)
    except InvalidAddress as exc:
        raise ApiError(400, exc.code, f"{what}: {exc.message}") from None


def record_id(text: str) -> bytes:
    return hex_bytes(text, "a record id", RECORD_ID_SIZE)


def tx_hash(text: str) -> bytes:
    return hex_bytes(text, "a transaction hash", TX_HASH_SIZE)


def transaction(text: str, params: ChainParams, what: str = "tx") -> Tx:
    """A transaction from the hex of its canonical encoding."""
    if len(text) > 2 * params.max_tx_bytes + 2:  # refuse before decoding the hex
        raise TxTooLarge(
            f"{what} is over {params.max_tx_bytes} bytes, the chain's limit; keep large "
            "data off-chain and name only its CID (POST /v1/records sends both)"
        )
    return decode_tx(hex_bytes(text, what), params)
