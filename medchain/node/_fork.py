"""A hard fork from the last anchored good state (paper 003's answer to a
high-centralisation attack: when attackers hold the validator majority, restoring
the old chain would only hand it back to them).

Honest operators agree on a final anchor and a new validator set; `fork_genesis`
builds the genesis of the new chain from it: the origin (parent chain, height, block
hash, state root) and the parent's whole state at that height, obtained by replaying
the stored blocks up to it (a store keeps state at its tip only) and checked against
the anchor. `genesis_state` (medchain.app) then starts the fork from that state with
the new validators, and bans the old ones left out.

It lives in the node layer because it replays the parent chain with the node's
`LedgerApp`; the anchor layer below only says which anchors to trust.
"""

from __future__ import annotations

from medchain.anchor import Anchor, anchor_is_valid
from medchain.app import genesis_state
from medchain.consensus import quorum_size
from medchain.crypto import PUBLIC_KEY_SIZE
from medchain.node._ledger_app import LedgerApp
from medchain.node._restore import replay
from medchain.store import ChainStore, StoreError
from medchain.types import (
    ForkOrigin,
    Genesis,
    GenesisValidator,
    MedchainError,
    StateEntry,
    block_hash,
)


class ForkError(MedchainError):
    """No fork genesis could be made from what was given; nothing was written."""

    code = "fork_failed"


def fork_genesis(
    store: ChainStore,
    genesis: Genesis,
    anchor: Anchor,
    *,
    chain_id: str,
    validators: tuple[GenesisValidator, ...],
    time_ms: int,
    anchor_validators: tuple[bytes, ...] | None = None,
    quorum: int | None = None,
) -> Genesis:
    """The genesis of a new chain `chain_id` that continues the chain of `store` and
    `genesis` from the final, valid `anchor`, run by `validators`. Its parameters
    are the parent's. Anchors are checked against `anchor_validators` (default: the
    parent's genesis validators) and `quorum` (default: their consensus quorum)."""
    _check_request(genesis, anchor, chain_id, validators)
    keys = anchor_validators or tuple(v.public_key for v in genesis.validators)
    if not anchor_is_valid(anchor, keys, quorum_size(len(keys)) if quorum is None else quorum):
        raise ForkError(
            f"the anchor at height {anchor.height} is not signed by a quorum of the "
            "validators; fork only from an anchor the validators certified"
        )
    if store.chain_id != genesis.chain_id:
        raise ForkError(
            f"the store holds chain {store.chain_id!r}, not {genesis.chain_id!r}; "
            "open the store of the chain you fork"
        )
    if store.latest_height() < anchor.height:
        raise ForkError(
            f"the store holds blocks up to {store.latest_height()} only, the anchor is at "
            f"{anchor.height}; let the node sync up to it first (or fork from a lower anchor)"
        )
    app = LedgerApp(genesis)
    try:
        reached = replay(app, store.blocks(1, anchor.height))
    except StoreError as exc:
        raise ForkError(
            f"the store cannot be read up to the anchor ({exc.message}); run "
            "`medchain recover` first, or fork from a node with an intact store"
        ) from exc
    header = app.last_block().header
    if reached != anchor.height or (block_hash(header), header.state_root) != (
        anchor.block_hash,
        anchor.state_root,
    ):
        raise ForkError(
            f"the stored chain does not replay to the anchored block at height "
            f"{anchor.height} (it reaches {reached} with block {block_hash(header).hex()}); "
            "run `medchain recover` first, or fork from a node with an intact store"
        )
    if time_ms < header.time_ms:
        raise ForkError(
            f"the fork's time {time_ms} is before the anchored block's {header.time_ms}; "
            "give it the current time"
        )
    origin = ForkOrigin(genesis.chain_id, anchor.height, anchor.block_hash, anchor.state_root)
    fork = Genesis(
        chain_id=chain_id,
        time_ms=time_ms,
        params=genesis.params,
        validators=validators,
        fork_of=(origin,),
        state=tuple(StateEntry(k, v) for k, v in app.ledger.state.committed().items()),
    )
    genesis_state(fork)  # refuses, e.g., a validator key registered in another role
    return fork


def _check_request(
    genesis: Genesis, anchor: Anchor, chain_id: str, validators: tuple[GenesisValidator, ...]
) -> None:
    if anchor.chain_id != genesis.chain_id:
        raise ForkError(
            f"the anchor is for chain {anchor.chain_id!r}, not {genesis.chain_id!r}; "
            "pick an anchor of the chain you fork"
        )
    if not anchor.final:
        raise ForkError(
            f"the anchor at height {anchor.height} is not final yet on the verification "
            "chain; wait until it is, or fork from an earlier final anchor"
        )
    if not chain_id or chain_id == genesis.chain_id:
        raise ForkError(
            "the fork needs a chain id of its own (transactions name their chain, so one "
            f"signed for {genesis.chain_id!r} must not be valid on the fork)"
        )
    keys = [v.public_key for v in validators]
    if not keys:
        raise ForkError("name at least one validator for the fork")
    if len(set(keys)) != len(keys) or any(len(k) != PUBLIC_KEY_SIZE for k in keys):
        raise ForkError(
            f"the fork's validators must be distinct {PUBLIC_KEY_SIZE}-byte Ed25519 keys"
        )
