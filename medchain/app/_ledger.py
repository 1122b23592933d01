"""The application as the node and the consensus engines see it (the shape of
CometBFT's ABCI): check a transaction, execute a block, answer queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medchain.app._apply import apply_checked_tx, check_tx_stateful, check_tx_static
from medchain.app._context import BlockContext
from medchain.app._errors import TxRejected
from medchain.app._genesis import genesis_state
from medchain.app._state import State
from medchain.types import Genesis, MedchainError, Receipt, Tx


class InvalidBlock(MedchainError):
    """A block holds a transaction that is not valid at its position: reject the block."""

    code = "invalid_block"


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    receipts: tuple[Receipt, ...]
    changes: dict[bytes, bytes | None]
    """Net state changes in key order (None = deleted), for the store."""
    state_root: bytes


class Ledger:
    def __init__(self, genesis: Genesis, committed: Mapping[bytes, bytes] | None = None) -> None:
        self.genesis = genesis
        self.state = genesis_state(genesis) if committed is None else State(committed)

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def check_tx(self, tx: Tx) -> Any:
        """Would `tx` be accepted now? Raises TxRejected; returns the decoded arguments."""
        args = check_tx_static(tx, self.chain_id, self.genesis.params)
        check_tx_stateful(self.state, tx, self.genesis.params)
        return args

    def execute_block(self, block: BlockContext, txs: Sequence[Tx]) -> BlockOutcome:
        """Apply a block's transactions and commit them in memory; all or nothing."""
        receipts = self._run(block, txs)
        changes = self.state.end_block()
        return BlockOutcome(receipts, changes, self.state.root())

    def simulate(self, block: BlockContext, txs: Sequence[Tx]) -> tuple[Receipt, ...]:
        """Receipts the transactions would get in a block, without changing anything."""
        receipts = self._run(block, txs)
        self.state.discard_block()
        return receipts

    def _run(self, block: BlockContext, txs: Sequence[Tx]) -> tuple[Receipt, ...]:
        self.state.begin_block()
        receipts = []
        try:
            for index, tx in enumerate(txs):
                try:
                    args = check_tx_static(tx, block.chain_id, block.params)
                    receipts.append(apply_checked_tx(self.state, block, tx, args))
                except TxRejected as exc:
                    raise InvalidBlock(f"transaction {index} is invalid: {exc.message}") from exc
        except BaseException:
            self.state.discard_block()
            raise
        return tuple(receipts)

    def state_root(self) -> bytes:
        return self.state.root()
