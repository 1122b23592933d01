"""Refusing at submission a call the contracts would refuse.

A contract refusal otherwise shows only in the committed receipt, after the sender
paid its fee and nonce and waited for a block. For the methods that check who may
act (organisations, credentials, proxies, break-glass, registration, records,
research, devices, key rotation and recovery, opening anonymous scopes) the node
runs the call against its latest committed state first, in a block layer it then
discards, and refuses it with the contract's error (`TxFailed`, whose code the API
turns into a 403, 409 or 422).

Only a transaction carrying its sender's next nonce is dry-run: one queued behind
the sender's pending transactions may depend on them, so it is admitted as before.
A call that depends on another sender's pending transaction is judged on committed
state, so a client sends it once that transaction is committed."""

from __future__ import annotations

from medchain.app import (
    ANONYMOUS_METHODS,
    BlockContext,
    Ledger,
    TxRejected,
    apply_checked_tx,
    check_tx_static,
    get_account,
    sender_of,
)
from medchain.types import Header, Receipt, Tx, TxFailed

DRY_RUN_PREFIXES = (
    "orgs.",
    "credentials.",
    "proxies.",
    "emergency.",
    "records.",
    "research.",
    "devices.",
    "recovery.",
    "keys.",
)
DRY_RUN_METHODS = frozenset({"registry.register", "anon.open_scope"})
NOT_DRY_RUN = frozenset({"devices.commit_batch"})
"""A gateway's batch carries thousands of readings and its only access check is that
the sender is an active gateway: running it twice would halve what a node ingests."""


def dry_run_at_admission(method: str) -> bool:
    """Whether admission dry-runs calls of `method` (the access-controlled ones)."""
    if method in ANONYMOUS_METHODS or method in NOT_DRY_RUN:
        return False
    return method in DRY_RUN_METHODS or method.startswith(DRY_RUN_PREFIXES)


def preview_receipt(ledger: Ledger, last: Header, tx: Tx, now_ms: int = 0) -> Receipt:
    """The receipt `tx` would get alone in the block after `last`, from a layer over
    the committed state that is discarded: nothing changes. Raises TxRejected for a
    transaction that is not valid at all. The block is dated `now_ms` (the node's
    clock: the block that takes `tx` is proposed after it arrived), or just after
    `last` if that is later: on an idle chain the last block may be long past, and an
    expiry or a waiting period must be judged at the time the call will run."""
    time_ms = max(last.time_ms + 1, now_ms)
    context = BlockContext(
        ledger.chain_id, last.height + 1, time_ms, last.proposer, ledger.genesis.params
    )
    state = ledger.state
    state.begin_block()
    try:
        args = check_tx_static(tx, context.chain_id, context.params, ledger.verified)
        return apply_checked_tx(state, context, tx, args, ledger.verified)
    finally:
        state.discard_block()


def preflight(ledger: Ledger, last: Header, tx: Tx, now_ms: int = 0) -> None:
    """Raise TxFailed if `tx`, an access-controlled call carrying its sender's next
    nonce, would be refused in the block after `last`; otherwise do nothing."""
    if not dry_run_at_admission(tx.method):
        return
    try:
        committed = get_account(ledger.state, sender_of(ledger.state, tx.sender)).nonce
    except TxRejected:
        return  # a retired key: admission refuses it with the reason

    if tx.nonce != committed:
        return  # behind the sender's pending transactions: it may depend on them
    receipt = preview_receipt(ledger, last, tx, now_ms)
    if not receipt.ok:
        raise TxFailed(receipt)
