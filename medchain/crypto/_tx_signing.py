"""Signing a transaction: the one place that pairs a `Tx` with an account key."""

from __future__ import annotations

from medchain.crypto._keys import AccountKeys
from medchain.types import Tx, encode


def signed_tx(
    keys: AccountKeys, chain_id: str, nonce: int, method: str, args: object, fee: int = 0
) -> Tx:
    """A transaction from `keys`' account calling `method` with `args` (a dataclass,
    canonically encoded), signed over its signing bytes."""
    unsigned = Tx(chain_id, nonce, keys.public_key, fee, method, encode(args))
    return Tx(
        unsigned.chain_id,
        unsigned.nonce,
        unsigned.sender,
        unsigned.fee,
        unsigned.method,
        unsigned.args,
        keys.sign(unsigned.signing_bytes()),
    )
