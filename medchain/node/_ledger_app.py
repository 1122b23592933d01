"""`LedgerApp`: the ledger as a consensus engine sees it (`ConsensusApp`).

It holds the in-memory `Ledger`, the `ChainStore` blocks are persisted to (in
memory unless given one on disk), and a simple pending-transaction list: checked
on arrival, deduplicated by transaction id, bounded, kept in arrival order. The
simulator and the networked node drive it the same way:

    block = app.propose(height, time_ms, my_key, vrf_proof)  # the primary
    reason = app.validate(block)  # every replica; None = valid
    app.commit(decided_block)     # every replica, once decided
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from medchain import app as contracts
from medchain.app import (
    ANONYMOUS_METHODS,
    BlockContext,
    BlockOutcome,
    InvalidBlock,
    Ledger,
    NonceGap,
    TxRejected,
)
from medchain.crypto import ADDRESS_SIZE, AccountKeys, address_from_public_key
from medchain.node._genesis_file import genesis_hash
from medchain.node._localchain import (
    block_header,
    genesis_block,
    ledger_from_store,
    receipt_root,
    tx_root,
)
from medchain.node._queries import ChainQueries
from medchain.store import ChainStore, StoreError
from medchain.types import (
    Block,
    Certificate,
    ChainParams,
    EquivocationEvidence,
    Genesis,
    Header,
    InvalidProposalEvidence,
    MedchainError,
    Tx,
    block_hash,
    encode,
    tx_id,
)

DEFAULT_MAX_PENDING = 10_000


class PendingFull(MedchainError):
    """The pending-transaction list is full: retry once blocks have drained it."""

    code = "pending_full"


class LedgerApp(ChainQueries):
    """A `medchain.consensus.ConsensusApp` over a `Ledger` and a `ChainStore`."""

    def __init__(
        self,
        genesis: Genesis,
        store: ChainStore | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.genesis = genesis
        self.store = ChainStore(Path(":memory:")) if store is None else store
        self.max_pending = max_pending
        if not self.store.is_initialised:
            self.ledger = Ledger(genesis)
            self.store.initialise(
                genesis.chain_id,
                genesis_hash(genesis),
                genesis_block(genesis, self.ledger.state_root()),
                self.ledger.state.committed(),
            )
        else:
            if (self.store.chain_id, self.store.genesis_hash) != (
                genesis.chain_id,
                genesis_hash(genesis),
            ):
                raise StoreError(
                    f"the store holds chain {self.store.chain_id!r} from another genesis; "
                    "open the data directory of this chain"
                )
            self.ledger = ledger_from_store(genesis, self.store)
        self._last = self.store.latest_block()
        self._outcomes: dict[bytes, BlockOutcome] = {}
        """Dry-run outcomes of blocks checked on the current tip, by block hash."""
        self._pending: dict[bytes, Tx] = {}
        """Pending transactions by id, in arrival order."""
        self._pending_nonces: dict[bytes, dict[int, int]] = {}
        """Per sender key, how many pending transactions carry each nonce: a sender's
        consecutive transactions may be queued before the first is included."""

    # -- what consensus reads ---------------------------------------------------------

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def params(self) -> ChainParams:
        return self.genesis.params

    @property
    def height(self) -> int:
        return self._last.header.height

    def last_block(self) -> Block:
        return self._last

    def validators(self) -> tuple[bytes, ...]:
        """The genesis validators' keys, in genesis order: the PBFT voting set."""
        return tuple(v.public_key for v in self.genesis.validators)

    def primary_candidates(self) -> tuple[bytes, ...]:
        """AFBFT's candidate queue for the next height. While no candidate has votes
        that count, the first `primary_candidates` genesis validators not banned (all
        of them if every one is banned: the chain must go on)."""
        height = self.height + 1
        elected = contracts.primary_candidates(self.ledger.state, height, self.params)
        if elected:
            return elected
        unbanned = tuple(
            key
            for key in self.validators()
            if not contracts.is_banned(self.ledger.state, address_from_public_key(key), height)
        )
        return (unbanned or self.validators())[: self.params.primary_candidates]

    def committee(self) -> tuple[bytes, ...]:
        """The DPoS committee serving the next height; the first `committee_size`
        genesis validators while none was elected (bans do not touch this fallback, so
        it stays fixed like an elected committee)."""
        elected = contracts.committee(self.ledger.state, self.height + 1, self.params)
        return elected or self.validators()[: self.params.committee_size]

    # -- pending transactions ---------------------------------------------------------

    def pending(self) -> tuple[Tx, ...]:
        return tuple(self._pending.values())

    def add_tx(self, tx: Tx) -> bool:
        """Queue `tx` for a block. False if it is already pending; raises TxRejected if
        it cannot be valid next (a nonce gap is fine when pending transactions of the
        same sender fill it) and PendingFull when the list is full."""
        identity = tx_id(tx)
        if identity in self._pending:
            return False
        try:
            self.ledger.check_tx(tx)
        except NonceGap:
            account = contracts.get_account(self.ledger.state, address_from_public_key(tx.sender))
            queued = self._pending_nonces.get(tx.sender, {})
            gap = range(account.nonce, tx.nonce)
            if len(gap) > len(queued) or any(n not in queued for n in gap):
                raise
        if len(self._pending) >= self.max_pending:
            raise PendingFull(
                f"{len(self._pending)} transactions are pending, the limit; retry shortly"
            )
        self._pending[identity] = tx
        nonces = self._pending_nonces.setdefault(tx.sender, {})
        nonces[tx.nonce] = nonces.get(tx.nonce, 0) + 1
        return True

    def submit_evidence(
        self, keys: AccountKeys, evidence: EquivocationEvidence | InvalidProposalEvidence
    ) -> Tx:
        """Sign a report of `evidence` by validator `keys` (nonce after its pending
        transactions) and queue it; returns the transaction."""
        method = (
            "consensus.report_equivocation"
            if isinstance(evidence, EquivocationEvidence)
            else "consensus.report_invalid_proposal"
        )
        nonce = contracts.get_account(self.ledger.state, keys.address).nonce
        while nonce in self._pending_nonces.get(keys.public_key, {}):
            nonce += 1
        unsigned = Tx(
            self.chain_id, nonce, keys.public_key, self.params.min_fee, method, encode(evidence)
        )
        tx = Tx(
            unsigned.chain_id,
            unsigned.nonce,
            unsigned.sender,
            unsigned.fee,
            unsigned.method,
            unsigned.args,
            keys.sign(unsigned.signing_bytes()),
        )
        self.add_tx(tx)
        return tx

    def _drop(self, ids: Iterable[bytes]) -> None:
        for identity in ids:
            tx = self._pending.pop(identity, None)
            if tx is None:
                continue
            nonces = self._pending_nonces[tx.sender]
            nonces[tx.nonce] -= 1
            if not nonces[tx.nonce]:
                del nonces[tx.nonce]
            if not nonces:
                del self._pending_nonces[tx.sender]

    # -- blocks -----------------------------------------------------------------------

    def _context(self, height: int, time_ms: int, proposer: bytes) -> BlockContext:
        return BlockContext(self.chain_id, height, time_ms, proposer, self.params)

    def propose(self, height: int, time_ms: int, proposer: bytes, vrf_proof: bytes = b"") -> Block:
        """The next block from the pending transactions that are still valid, in
        arrival order, up to `max_block_txs`; executed as a dry run, nothing changes.
        Its time is `time_ms`, or just after its parent's if that is not later;
        `vrf_proof` goes into the header as given (the engine checks it, not the app)."""
        parent = self._last.header
        if height != parent.height + 1:
            raise ValueError(f"the next height is {parent.height + 1}, cannot propose {height}")
        context = self._context(
            height, max(time_ms, parent.time_ms + 1), address_from_public_key(proposer)
        )
        txs, outcome = self.ledger.build_block(
            context, self._pending.values(), self.params.max_block_txs
        )
        header = block_header(parent, context, txs, outcome, vrf_proof)
        self._outcomes[block_hash(header)] = outcome
        return Block(header, txs, Certificate(height, 0, block_hash(header), ()))

    def _check_header(self, block: Block) -> str | None:
        """What is wrong with `block` as the next block, short of executing it."""
        header, parent = block.header, self._last.header
        if header.chain_id != self.chain_id:
            return f"block is for chain {header.chain_id!r}, this is {self.chain_id!r}"
        if header.height != parent.height + 1:
            return f"block height {header.height} is not the next height {parent.height + 1}"
        if header.prev_hash != block_hash(parent):
            return f"block {header.height} does not extend the latest block {parent.height}"
        if header.time_ms <= parent.time_ms:
            return f"block time {header.time_ms} is not after its parent's {parent.time_ms}"
        if len(header.proposer) != ADDRESS_SIZE:
            return f"the proposer must be a {ADDRESS_SIZE}-byte address"
        if len(block.txs) > self.params.max_block_txs:
            return (
                f"block holds {len(block.txs)} transactions, "
                f"the limit is {self.params.max_block_txs}"
            )
        if header.tx_root != tx_root(block.txs):
            return "the tx root does not match the block's transactions"
        return None

    def _context_of(self, header: Header) -> BlockContext:
        return self._context(header.height, header.time_ms, header.proposer)

    def validate(self, block: Block) -> str | None:
        """None if `block` is a valid next block (its transactions re-executed as a
        dry run give its receipt and state roots), else why it is not."""
        reason = self._check_header(block)
        if reason is not None:
            return reason
        try:
            outcome = self.ledger.dry_run(self._context_of(block.header), block.txs)
        except InvalidBlock as exc:
            return exc.message
        if receipt_root(outcome.receipts) != block.header.receipt_root:
            return "the receipt root does not match the re-executed transactions"
        if outcome.state_root != block.header.state_root:
            return "the state root does not match the re-executed transactions"
        self._outcomes[block_hash(block.header)] = outcome
        return None

    def commit(self, block: Block) -> None:
        """Execute `block` for real, check its roots again, persist it with its
        receipts, and drop its transactions (and any made stale) from the pending list.
        Raises InvalidBlock, changing nothing, if the block is not a valid next block."""
        reason = self._check_header(block)
        if reason is not None:
            raise InvalidBlock(reason)
        header = block.header
        known = self._outcomes.get(block_hash(header))
        if known is not None and known.state_root == header.state_root:
            self.ledger.commit_outcome(known)  # validated on this very tip: no need to re-run
            outcome = known
        else:
            outcome = self.ledger.execute_block(
                self._context_of(header), block.txs, expected_state_root=header.state_root
            )
        self._outcomes.clear()  # computed on the old tip: stale now
        try:
            if receipt_root(outcome.receipts) != header.receipt_root:
                raise InvalidBlock("the receipt root does not match the re-executed transactions")
            self.store.commit_block(block, outcome.receipts, outcome.changes)
        except BaseException:
            self.ledger = ledger_from_store(self.genesis, self.store)  # undo the execution
            raise
        self._last = block
        self._drop([tx_id(tx) for tx in block.txs])
        self._drop([i for i, tx in self._pending.items() if self._stale(tx)])

    def _stale(self, tx: Tx) -> bool:
        """A pending transaction whose nonce (or, anonymous, whose key image in its
        scope) is already used can never be included."""
        if tx.method in ANONYMOUS_METHODS:
            try:
                self.ledger.check_tx(tx)
            except TxRejected:
                return True
            return False
        account = contracts.get_account(self.ledger.state, address_from_public_key(tx.sender))
        return tx.nonce < account.nonce
