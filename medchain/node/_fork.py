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

from collections.abc import Sequence
from pathlib import Path

from medchain.anchor import MAX_CHAIN_ID_BYTES, Anchor, anchor_is_valid, verify_store
from medchain.app import genesis_state
from medchain.consensus import quorum_size
from medchain.crypto import PUBLIC_KEY_SIZE
from medchain.node._genesis_file import genesis_hash
from medchain.node._ledger_app import LedgerApp
from medchain.node._localchain import STORE_FILE
from medchain.node._restore import replay
from medchain.store import ChainStore, StoreError
from medchain.types import (
    ForkOrigin,
    Genesis,
    GenesisValidator,
    MedchainError,
    StateEntry,
    block_hash,
    fixed_hex,
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
    if store.base_height() > 0:
        raise ForkError(
            f"the store joined the chain from a snapshot and holds blocks from height "
            f"{store.base_height()} only; a fork replays every block since genesis: let the "
            "node fetch the older blocks first (it does so in the background)"
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


# -- a fork from a node's home --------------------------------------------------------


def fork_validators(
    genesis: Genesis, keep: Sequence[str], add: Sequence[str]
) -> tuple[GenesisValidator, ...]:
    """The fork's validators as operators name them: `keep`, names of validators of
    `genesis` that stay; `add`, `NAME=NODEKEY` (64 hex digits) of new ones."""
    by_name = {v.name: v for v in genesis.validators}
    unknown = [name for name in keep if name not in by_name]
    if unknown:
        raise MedchainError(
            f"--keep {', '.join(unknown)}: not a validator of {genesis.chain_id!r}; its "
            f"validators are {', '.join(by_name)}"
        )
    chosen = [by_name[name] for name in keep]
    for spec in add:
        name, sep, hex_key = spec.rpartition("=")
        key = fixed_hex(hex_key, 32)
        if not sep or not name.strip() or key is None:
            raise MedchainError(f"--add {spec!r}: expected NAME=NODEKEY (64 hex digits)")
        chosen.append(GenesisValidator(key, name.strip()))
    if not chosen:
        raise MedchainError(
            "name the fork's validators: --keep NAME for a validator of the old chain that "
            "stays honest, --add NAME=NODEKEY for a new one (repeat either)"
        )
    if len({v.name for v in chosen}) < len(chosen):
        raise MedchainError("a validator name is given twice in --keep/--add")
    if len({v.public_key for v in chosen}) < len(chosen):
        raise MedchainError("a validator key is given twice in --keep/--add")
    return tuple(chosen)


def fork_anchor(
    home: Path, genesis: Genesis, anchors: Sequence[Anchor], height: int | None
) -> Anchor:
    """The final, valid anchor to fork from: the highest one the store of the node at
    `home` matches with its whole chain intact below it, or the one at `height` under
    it."""
    path = home / STORE_FILE
    if not path.is_file():
        raise ForkError(f"{home} has no chain store ({STORE_FILE}); fork from a node that has one")
    keys = tuple(v.public_key for v in genesis.validators)
    report = verify_store(path, anchors, keys, chain_id=genesis.chain_id)
    top = report.last_verified_height
    if top < 0:
        why = (
            f"the stored chain is wrong from height {report.first_mismatch.height}: "
            f"{report.first_mismatch.what}"
            if report.first_mismatch is not None
            else f"{report.anchors_final} of {report.anchors_total} anchors are final"
        )
        raise ForkError(
            f"no final, valid anchor of {genesis.chain_id!r} matches this node's chain ({why}); "
            "wait for an anchor to be final, or `medchain recover` and resync first"
        )
    target = top if height is None else height
    if target > top:
        raise ForkError(
            f"--height {target} is above {top}, the highest anchored height this node's chain "
            "is verified to; fork from that height or below"
        )
    quorum = quorum_size(len(keys))
    found = [
        a for a in anchors if a.height == target and a.final and anchor_is_valid(a, keys, quorum)
    ]
    if not found:
        raise ForkError(f"there is no final, valid anchor at height {target}; pick another")
    return min(found, key=lambda a: a.eth_block)


def fork_home(
    home: Path,
    genesis: Genesis,
    anchors: Sequence[Anchor],
    *,
    validators: tuple[GenesisValidator, ...],
    chain_id: str | None,
    height: int | None,
    time_ms: int,
) -> Genesis:
    """The genesis of a fork of the chain of the node at `home` (its `genesis`), from
    the anchor `fork_anchor` picks among `anchors`; `chain_id` defaults to
    `<old>-fork-<height>`. The node's store is only read."""
    anchor = fork_anchor(home, genesis, anchors, height)
    new_id = chain_id or f"{genesis.chain_id}-fork-{anchor.height}"
    if len(new_id.encode("utf-8")) > MAX_CHAIN_ID_BYTES:
        raise MedchainError(
            f"the chain id {new_id!r} is longer than the anchor contract's "
            f"{MAX_CHAIN_ID_BYTES} bytes; pass a shorter --chain-id"
        )
    with ChainStore(
        home / STORE_FILE, chain_id=genesis.chain_id, genesis_hash=genesis_hash(genesis)
    ) as store:
        return fork_genesis(
            store, genesis, anchor, chain_id=new_id, validators=validators, time_ms=time_ms
        )
