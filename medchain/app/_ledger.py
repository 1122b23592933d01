"""The application as the node and the consensus engines see it (the shape of
CometBFT's ABCI): check a transaction, build, dry-run or execute a block, answer
queries. Every block starts with `begin_block` (rewards, bans, the epoch's
committee), then runs its transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medchain.app import _rewards
from medchain.app._anon import ANONYMOUS_METHODS, require_fresh_key_image
from medchain.app._apply import (
    apply_checked_tx,
    check_anonymous,
    check_tx_stateful,
    check_tx_static,
    ed25519_check,
    ring_check,
)
from medchain.app._context import BlockContext
from medchain.app._election import record_committee
from medchain.app._errors import TxRejected
from medchain.app._genesis import genesis_state
from medchain.app._penalties import expire_bans
from medchain.app._proposals import lapse_proposals
from medchain.app._signatures import SignatureCache, SignatureCheck
from medchain.app._state import State
from medchain.app._state_backend import StateBackend
from medchain.types import Event, Genesis, MedchainError, Receipt, Tx


class InvalidBlock(MedchainError):
    """A block holds a transaction that is not valid at its position: reject the block."""

    code = "invalid_block"


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    receipts: tuple[Receipt, ...]
    changes: dict[bytes, bytes | None]
    """Net state changes in key order (None = deleted), for the store."""
    state_root: bytes
    events: tuple[Event, ...] = ()
    """What the block itself did before its transactions (rewards vested, bans lifted,
    committee elected); not part of any receipt."""


def begin_block(state: State, block: BlockContext) -> list[Event]:
    """Block-level changes made at the start of every block, before its transactions:
    record the epoch's committee (from the state as the block starts), pay vested
    rewards and grant this block's, lift ended bans. Writes nothing on a chain that
    mints no rewards and has no votes or bans."""
    events = record_committee(state, block)
    events += _rewards.begin_block(state, block)
    events += expire_bans(state, block.height)
    events += lapse_proposals(state, block.height)
    return events


class Ledger:
    def __init__(
        self,
        genesis: Genesis,
        committed: StateBackend | Mapping[bytes, bytes] | None = None,
        *,
        verified: SignatureCache | None = None,
    ) -> None:
        """`committed`: the state as a backend (a node's store) or as entries held in
        memory; None starts from the genesis state, in memory."""
        self.genesis = genesis
        self.state = genesis_state(genesis) if committed is None else State(committed)
        self.verified = verified
        """Signature checks already passed on this node, skipped when met again."""

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def check_tx(self, tx: Tx) -> Any:
        """Would `tx` be accepted now? Raises TxRejected; returns the decoded arguments."""
        args = check_tx_static(tx, self.chain_id, self.genesis.params, self.verified)
        if tx.method in ANONYMOUS_METHODS:
            check_anonymous(self.state, tx, args, self.genesis.params, self.verified)
        else:
            check_tx_stateful(self.state, tx, self.genesis.params)
        return args

    def check_unsigned(self, tx: Tx) -> SignatureCheck:
        """Every check of `check_tx` but the signature's, cheapest first (a stale nonce
        or a used key image costs no verification); returns the signature check still
        to run, for the caller to run where it likes (off the node's event loop)."""
        params = self.genesis.params
        args = check_tx_static(tx, self.chain_id, params, verify=False)
        if tx.method in ANONYMOUS_METHODS:
            check = ring_check(self.state, tx, args, params)
            require_fresh_key_image(self.state, args.scope, check.key_image)
            return check
        check_tx_stateful(self.state, tx, params)
        return ed25519_check(tx)

    def signature_check(self, tx: Tx) -> SignatureCheck:
        """The signature check `tx` needs against the current state, whatever its nonce:
        to verify a block's transactions ahead of running it. Raises TxRejected for an
        anonymous transaction whose form or ring is not acceptable now."""
        if tx.method not in ANONYMOUS_METHODS:
            return ed25519_check(tx)
        params = self.genesis.params
        args = check_tx_static(tx, self.chain_id, params, verify=False)
        return ring_check(self.state, tx, args, params)

    def execute_block(
        self,
        block: BlockContext,
        txs: Sequence[Tx],
        expected_state_root: bytes | None = None,
    ) -> BlockOutcome:
        """Apply a block's transactions and commit them in memory; all or nothing.

        With `expected_state_root`, a block whose resulting root differs raises
        InvalidBlock and changes nothing."""
        events, receipts = self._run(block, txs)
        if expected_state_root is None:
            changes = self.state.end_block()
            return BlockOutcome(receipts, changes, self.state.root(), events)
        root = self.state.pending_root()
        if root != expected_state_root:
            self.state.discard_block()
            raise InvalidBlock(
                f"block {block.height} leads to state root {root.hex()}, "
                f"not the {expected_state_root.hex()} it claims"
            )
        return BlockOutcome(receipts, self.state.end_block(), root, events)

    def commit_outcome(self, outcome: BlockOutcome) -> None:
        """Commit what a dry run on the current state computed, without executing the
        block again (a node validates a block before it commits it; once is enough)."""
        self.state.begin_block()
        for key, value in outcome.changes.items():
            if value is None:
                self.state.delete(key)
            else:
                self.state.set(key, value)
        self.state.end_block()

    def simulate(self, block: BlockContext, txs: Sequence[Tx]) -> tuple[Receipt, ...]:
        """Receipts the transactions would get in a block, without changing anything."""
        _, receipts = self._run(block, txs)
        self.state.discard_block()
        return receipts

    def dry_run(self, block: BlockContext, txs: Sequence[Tx]) -> BlockOutcome:
        """Everything executing the block would give (receipts, changes, state root),
        without changing anything. Raises InvalidBlock like `execute_block`."""
        events, receipts = self._run(block, txs)
        return self._preview(receipts, events)

    def build_block(
        self, block: BlockContext, candidates: Iterable[Tx], max_txs: int
    ) -> tuple[tuple[Tx, ...], BlockOutcome]:
        """Dry-run a proposal: take `candidates` in order, skip any that is not valid
        at its position (TxRejected) and anonymous ones past the block's limit
        (`max_block_anonymous_txs`), stop at `max_txs`. Returns the included
        transactions and what executing them gives; changes nothing."""
        events = self._begin(block)
        included: list[Tx] = []
        receipts: list[Receipt] = []
        anonymous = 0
        try:
            for tx in candidates:
                if len(included) >= max_txs:
                    break
                if tx.method in ANONYMOUS_METHODS:
                    if anonymous >= block.params.max_block_anonymous_txs:
                        continue  # left pending for a later block
                    anonymous += 1
                try:
                    args = check_tx_static(tx, block.chain_id, block.params, self.verified)
                    receipts.append(apply_checked_tx(self.state, block, tx, args, self.verified))
                except TxRejected:
                    continue
                included.append(tx)
        except BaseException:
            self.state.discard_block()
            raise
        return tuple(included), self._preview(tuple(receipts), events)

    def _preview(self, receipts: tuple[Receipt, ...], events: tuple[Event, ...]) -> BlockOutcome:
        try:
            layer = self.state.open_block_changes()
            root = self.state.pending_root()
        finally:
            self.state.discard_block()
        return BlockOutcome(receipts, layer, root, events)

    def _begin(self, block: BlockContext) -> tuple[Event, ...]:
        self.state.begin_block()
        try:
            return tuple(begin_block(self.state, block))
        except BaseException:
            self.state.discard_block()
            raise

    def _run(
        self, block: BlockContext, txs: Sequence[Tx]
    ) -> tuple[tuple[Event, ...], tuple[Receipt, ...]]:
        anonymous = sum(1 for tx in txs if tx.method in ANONYMOUS_METHODS)
        if anonymous > block.params.max_block_anonymous_txs:  # before any ring is checked
            raise InvalidBlock(
                f"block {block.height} holds {anonymous} anonymous transactions, the limit "
                f"is {block.params.max_block_anonymous_txs}"
            )
        events = self._begin(block)
        receipts = []
        try:
            for index, tx in enumerate(txs):
                try:
                    args = check_tx_static(tx, block.chain_id, block.params, self.verified)
                    receipts.append(apply_checked_tx(self.state, block, tx, args, self.verified))
                except TxRejected as exc:
                    raise InvalidBlock(f"transaction {index} is invalid: {exc.message}") from exc
        except BaseException:
            self.state.discard_block()
            raise
        return events, tuple(receipts)

    def state_root(self) -> bytes:
        return self.state.root()
