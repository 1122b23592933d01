"""`LedgerApp`: the ledger as a consensus engine sees it (`ConsensusApp`).

It holds the in-memory `Ledger`, the `ChainStore` blocks are persisted to (in
memory unless given one on disk), and the `Mempool` of pending transactions. The
ledger and the mempool share a signature cache, so a transaction verified on
admission is not verified again when a block holding it is checked or executed.
The simulator and the networked node drive it the same way:

    block = app.propose(height, time_ms, my_key, vrf_proof)  # the primary
    reason = app.validate(block)  # every replica; None = valid
    app.commit(decided_block)     # every replica, once decided

AFBFT's candidates propose orderings instead (`order`), and every validator builds
the winning one itself (`build`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from medchain import app as contracts
from medchain.app import (
    ANONYMOUS_METHODS,
    BlockContext,
    BlockOutcome,
    InvalidBlock,
    Ledger,
    SignatureCache,
)
from medchain.consensus import Ordering
from medchain.crypto import ADDRESS_SIZE, AccountKeys, address_from_public_key, signed_tx
from medchain.mempool import (
    DEFAULT_MAX_ANONYMOUS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PER_SENDER,
    DEFAULT_MAX_TXS,
    Mempool,
    MempoolFull,
)
from medchain.node._genesis_file import genesis_hash
from medchain.node._localchain import (
    block_header,
    commit_to_store,
    ledger_from_store,
    receipt_root,
    store_genesis,
    tx_root,
    wall_clock_ms,
)
from medchain.node._preflight import preflight
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
    Receipt,
    Tx,
    block_hash,
)

DEFAULT_SIGNATURE_CACHE = 32_768
"""Signature checks remembered: more than a full mempool, so none is verified twice."""

PendingFull = MempoolFull
"""The earlier name of `medchain.mempool.MempoolFull`, for callers that catch it."""


class LedgerApp(ChainQueries):
    """A `medchain.consensus.ConsensusApp` over a `Ledger` and a `ChainStore`."""

    def __init__(
        self,
        genesis: Genesis,
        store: ChainStore | None = None,
        *,
        max_txs: int = DEFAULT_MAX_TXS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_per_sender: int = DEFAULT_MAX_PER_SENDER,
        max_anonymous: int = DEFAULT_MAX_ANONYMOUS,
        signature_cache: int = DEFAULT_SIGNATURE_CACHE,
    ) -> None:
        """`max_*` bound the mempool (see `Mempool`); `signature_cache` is how many
        verified signatures the node remembers."""
        self.genesis = genesis
        self.store = ChainStore(Path(":memory:")) if store is None else store
        self.signatures = SignatureCache(signature_cache)
        if not self.store.is_initialised:
            store_genesis(genesis, self.store)
        elif (self.store.chain_id, self.store.genesis_hash) != (
            genesis.chain_id,
            genesis_hash(genesis),
        ):
            raise StoreError(
                f"the store holds chain {self.store.chain_id!r} from another genesis; "
                "open the data directory of this chain"
            )
        self.ledger = self._load_ledger()
        self._last = self.store.latest_block()
        self._outcomes: dict[bytes, BlockOutcome] = {}
        """Dry-run outcomes of blocks checked on the current tip, by block hash."""
        self.final_anchor: Callable[[int], bytes | None] | None = None
        """Block hash a final anchor on the verification chain fixes at a height: a
        block that contradicts it is refused (from a proposal or from sync)."""
        self.before_store: Callable[[Block, Sequence[Receipt]], None] | None = None
        """Called with each block and its receipts just before it is stored: the node's
        body ledger learns what the block names before its collector could miss it."""
        self.mempool = Mempool(
            self.ledger,
            max_txs=max_txs,
            max_bytes=max_bytes,
            max_per_sender=max_per_sender,
            max_anonymous=max_anonymous,
        )

    def _load_ledger(self) -> Ledger:
        """The ledger at the latest stored block, sharing this node's signature cache."""
        ledger = ledger_from_store(self.genesis, self.store)
        ledger.verified = self.signatures
        return ledger

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
        """AFBFT's candidate queue for the next height: the elected candidates, best
        first, then — while fewer than `primary_candidates` have votes that count —
        the genesis validators not banned, in genesis order, to fill the seats (so one
        voted candidate going down cannot stop the chain). All of them if every one is
        banned: the chain must go on."""
        height = self.height + 1
        seats = self.params.primary_candidates
        elected = contracts.primary_candidates(self.ledger.state, height, self.params)
        if len(elected) >= seats:
            return elected[:seats]
        unbanned = tuple(
            key
            for key in self.validators()
            if not contracts.is_banned(self.ledger.state, address_from_public_key(key), height)
        )
        fill = tuple(k for k in (unbanned or self.validators()) if k not in elected)
        return (elected + fill)[:seats]

    def committee(self) -> tuple[bytes, ...]:
        """The DPoS committee serving the next height; the first `committee_size`
        genesis validators while none was elected (bans do not touch this fallback, so
        it stays fixed like an elected committee)."""
        elected = contracts.committee(self.ledger.state, self.height + 1, self.params)
        return elected or self.validators()[: self.params.committee_size]

    # -- pending transactions ---------------------------------------------------------

    def pending(self) -> tuple[Tx, ...]:
        """The mempool's transactions, in arrival order."""
        return self.mempool.reap()

    def add_tx(self, tx: Tx) -> bool:
        """Queue `tx` for a block (`Mempool.add`): False if it is already pending;
        raises TxRejected if it cannot be valid next (a nonce gap is fine when pending
        transactions of the same sender fill it) and MempoolFull when there is no room."""
        return self.mempool.add(tx)

    def preflight(self, tx: Tx) -> None:
        """Raise TxFailed if `tx` is an access-controlled call, next of its sender, that
        the contracts would refuse in the next block (see `medchain.node._preflight`):
        a client is told at once instead of in a committed receipt."""
        preflight(self.ledger, self._last.header, tx, wall_clock_ms())

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
        committed = contracts.get_account(self.ledger.state, keys.address).nonce
        nonce = self.mempool.next_nonce(keys.public_key, committed)
        tx = signed_tx(keys, self.chain_id, nonce, method, evidence, self.params.min_fee)
        self.add_tx(tx)
        return tx

    # -- blocks -----------------------------------------------------------------------

    def _context(self, height: int, time_ms: int, proposer: bytes) -> BlockContext:
        return BlockContext(self.chain_id, height, time_ms, proposer, self.params)

    def propose(self, height: int, time_ms: int, proposer: bytes, vrf_proof: bytes = b"") -> Block:
        """The next block from the pending transactions that are still valid, in
        arrival order, up to `max_block_txs` (the whole mempool is offered, so ones no
        longer valid do not leave it short); executed as a dry run, nothing changes.
        Its time is `time_ms`, or just after its parent's if that is not later;
        `vrf_proof` goes into the header as given (the engine checks it, not the app)."""
        parent = self._last.header
        if height != parent.height + 1:
            raise ValueError(f"the next height is {parent.height + 1}, cannot propose {height}")
        context = self._context(
            height, max(time_ms, parent.time_ms + 1), address_from_public_key(proposer)
        )
        txs, outcome = self.ledger.build_block(
            context, self.mempool.reap(), self.params.max_block_txs
        )
        header = block_header(parent, context, txs, outcome, vrf_proof)
        self._outcomes[block_hash(header)] = outcome
        return Block(header, txs, Certificate(height, 0, block_hash(header), ()))

    def order(self, height: int) -> tuple[Tx, ...]:
        """AFBFT's ordering for `height`: the pending transactions in arrival order, up
        to `max_block_txs`, not executed (only the winning candidate's is, by every
        validator). Anonymous ones past `max_block_anonymous_txs` stay pending, as
        `propose` would leave them, so they take no place in the block."""
        if height != self.height + 1:
            raise ValueError(f"the next height is {self.height + 1}, cannot order {height}")
        anonymous_left = self.params.max_block_anonymous_txs
        chosen: list[Tx] = []
        for tx in self.mempool.reap():
            if len(chosen) >= self.params.max_block_txs:
                break
            if tx.method in ANONYMOUS_METHODS:
                if anonymous_left <= 0:
                    continue
                anonymous_left -= 1
            chosen.append(tx)
        return tuple(chosen)

    def build(
        self, height: int, ordering: Ordering, proposer: bytes, vrf_proof: bytes
    ) -> Block | str:
        """The block an AFBFT ordering stands for (see `ConsensusApp.build`): its
        transactions taken in order by the same `build_block` as `propose`, skipping
        the ones invalid where they stand; or why it cannot be the next block."""
        parent = self._last.header
        if height != parent.height + 1:
            return f"the ordering is for height {height}, the next height is {parent.height + 1}"
        if ordering.parent != block_hash(parent):
            return f"the ordering for height {height} does not extend the latest block"
        if ordering.time_ms <= parent.time_ms:
            return f"ordering time {ordering.time_ms} is not after its parent's {parent.time_ms}"
        if len(ordering.txs) > self.params.max_block_txs:
            return (
                f"the ordering holds {len(ordering.txs)} transactions, "
                f"the limit is {self.params.max_block_txs}"
            )
        context = self._context(height, ordering.time_ms, address_from_public_key(proposer))
        txs, outcome = self.ledger.build_block(context, ordering.txs, self.params.max_block_txs)
        header = block_header(parent, context, txs, outcome, vrf_proof)
        block = Block(header, txs, Certificate(height, 0, block_hash(header), ()))
        reason = self._check_header(block)  # its time, and a final anchor it may contradict
        if reason is not None:
            return reason
        self._outcomes[block_hash(header)] = outcome
        return block

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
        anchored = self.final_anchor(header.height) if self.final_anchor else None
        if anchored is not None and anchored != block_hash(header):
            return (
                f"block {header.height} conflicts with the final anchor on the verification "
                f"chain (anchored {anchored.hex()[:16]}): it is not on the honest chain"
            )
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
        receipts, and update the mempool (its transactions and any made stale leave).
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
            if self.before_store is not None:
                self.before_store(block, outcome.receipts)
            commit_to_store(self.ledger, self.store, block, outcome.receipts)
        except BaseException:
            self.ledger = self._load_ledger()  # undo the execution
            self.mempool.update((), self.ledger)
            raise
        self._last = block
        self.index_committed(block, outcome.receipts)
        self.mempool.update(block.txs, self.ledger)
