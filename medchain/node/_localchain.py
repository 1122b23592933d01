"""A single-validator chain in one process: it checks and applies signed
transactions, seals each batch into a block signed by its validator key, and
persists blocks, receipts, state and record ciphertexts under one directory.
The networked node reuses the same ledger, store and blob store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medchain.app import (
    BlockContext,
    BlockOutcome,
    Ledger,
    body_named,
    decode_tx,
)
from medchain.crypto import AccountKeys, cached_merkle_root, load_keys, merkle_root, save_keys
from medchain.node._erasures import ErasedBlobs
from medchain.node._genesis_file import genesis_hash, read_genesis, write_genesis
from medchain.node._queries import ChainQueries
from medchain.offchain import BlobStore, LocalBlobStore, MemoryBlobStore, cid_for
from medchain.store import ChainStore, StoreError
from medchain.types import (
    ZERO_HASH,
    Block,
    Certificate,
    ChainParams,
    CommitSig,
    Genesis,
    Header,
    MedchainError,
    Receipt,
    Tx,
    TxFailed,
    block_hash,
    commit_signing_bytes,
    encode,
    tx_id,
)

GENESIS_FILE = "genesis.json"
VALIDATOR_KEY_FILE = "validator.key"
STORE_FILE = "chain.sqlite"
BLOBS_DIR = "blobs"
NO_PROPOSER = b"\x00" * 20


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def genesis_block(genesis: Genesis, state_root: bytes) -> Block:
    header = Header(
        chain_id=genesis.chain_id,
        height=0,
        prev_hash=ZERO_HASH,
        time_ms=genesis.time_ms,
        proposer=NO_PROPOSER,
        tx_root=merkle_root([]),
        receipt_root=merkle_root([]),
        state_root=state_root,
    )
    return Block(header, (), Certificate(0, 0, block_hash(header), ()))


def tx_root(txs: Sequence[Tx]) -> bytes:
    return cached_merkle_root(tuple(tx_id(tx) for tx in txs))


def receipt_root(receipts: Sequence[Receipt]) -> bytes:
    return merkle_root([encode(r) for r in receipts])


def block_header(
    parent: Header,
    context: BlockContext,
    txs: Sequence[Tx],
    outcome: BlockOutcome,
    vrf_proof: bytes = b"",
) -> Header:
    """The header of the block that executing `txs` in `context` on top of `parent` made."""
    return Header(
        chain_id=context.chain_id,
        height=context.height,
        prev_hash=block_hash(parent),
        time_ms=context.time_ms,
        proposer=context.proposer,
        tx_root=tx_root(txs),
        receipt_root=receipt_root(outcome.receipts),
        state_root=outcome.state_root,
        vrf_proof=vrf_proof,
    )


def ledger_from_store(genesis: Genesis, store: ChainStore) -> Ledger:
    """The ledger over the store's state, read through its cache (nothing is loaded and
    the tree is not rebuilt: its upper tier is read from the store), checked in itself
    (the stored bucket roots hash up to the stored root) and against the latest
    block's state root."""
    ledger = Ledger(genesis, store.state)
    try:
        ledger.state.check_tree()
    except ValueError as exc:
        raise StoreError(
            f"{exc}: the data directory is damaged; restore it from a backup or resync"
        ) from exc
    expected = store.latest_block().header.state_root
    if ledger.state_root() != expected:
        raise StoreError(
            "the stored state does not match the state root of the latest block; "
            "the data directory is damaged: restore it from a backup or resync"
        )
    return ledger


def store_genesis(genesis: Genesis, store: ChainStore) -> None:
    """Initialise an empty store with the genesis block and the state it makes."""
    state = Ledger(genesis).state
    store.initialise(
        genesis.chain_id,
        genesis_hash(genesis),
        genesis_block(genesis, state.root()),
        state.committed(),
        state.tree_nodes(),
    )


def commit_to_store(
    ledger: Ledger, store: ChainStore, block: Block, receipts: Sequence[Receipt]
) -> None:
    """Write `block` with what the ledger's state changed since it was last written
    (entries and tree nodes), then let the state drop what the store now holds."""
    delta = ledger.state.unpersisted()
    store.commit_block(block, receipts, delta.changes, delta.nodes)
    ledger.state.persisted()


class LocalChain(ChainQueries):
    def __init__(
        self,
        genesis: Genesis,
        validator: AccountKeys,
        store: ChainStore,
        blobs: BlobStore,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.genesis = genesis
        self.validator = validator
        self.store = store
        self.erased = ErasedBlobs(":memory:", blobs)
        """Erased records' ciphertexts (rebuilt from the state on open, as a node's)."""
        self.blobs = blobs
        self._clock = clock
        self.before_store: Callable[[Block, Sequence[Receipt]], None] | None = None
        """Called with each block and its receipts just before it is stored (as
        `LedgerApp.before_store`: a test node's body ledger follows the chain)."""
        if not store.is_initialised:
            store_genesis(genesis, store)
        self.ledger = self._ledger_from_store()
        self.erased.sync(self.ledger.state)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def in_memory(
        cls,
        genesis: Genesis,
        validator: AccountKeys,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> LocalChain:
        return cls(genesis, validator, ChainStore(Path(":memory:")), MemoryBlobStore(), clock)

    @classmethod
    def create(cls, home: Path, genesis: Genesis, validator: AccountKeys) -> LocalChain:
        """Lay out a new data directory: genesis, validator key, store and blobs."""
        if (home / GENESIS_FILE).exists():
            raise StoreError(f"{home} already holds a chain; open it instead of creating one")
        home.mkdir(parents=True, exist_ok=True)
        write_genesis(home / GENESIS_FILE, genesis)
        save_keys(home / VALIDATOR_KEY_FILE, validator)
        return cls.open(home)

    @classmethod
    def open(cls, home: Path, clock: Callable[[], int] = wall_clock_ms) -> LocalChain:
        if not (home / GENESIS_FILE).exists():
            raise StoreError(
                f"{home} holds no chain (no {GENESIS_FILE}); create one with `medchain init`"
            )
        genesis = read_genesis(home / GENESIS_FILE)
        validator = load_keys(home / VALIDATOR_KEY_FILE)
        store = ChainStore(
            home / STORE_FILE, chain_id=genesis.chain_id, genesis_hash=genesis_hash(genesis)
        )
        return cls(genesis, validator, store, LocalBlobStore(home / BLOBS_DIR), clock)

    def _ledger_from_store(self) -> Ledger:
        return ledger_from_store(self.genesis, self.store)

    def close(self) -> None:
        self.close_index()
        self.store.close()
        self.erased.close()

    # -- reading (the rest comes from ChainQueries) ----------------------------------

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def params(self) -> ChainParams:
        return self.genesis.params

    # -- writing --------------------------------------------------------------------

    def submit_raw(self, raw: bytes) -> Receipt:
        return self.submit(decode_tx(raw, self.genesis.params))

    def submit(self, tx: Tx) -> Receipt:
        """Check, dry-run and commit one transaction in its own block.

        A rejected transaction raises TxRejected; a refused call raises TxFailed;
        in both cases nothing is recorded and no nonce is spent."""
        self.ledger.check_tx(tx)
        (receipt,) = self.ledger.simulate(self._next_context(), [tx])
        if not receipt.ok:
            raise TxFailed(receipt)
        (committed,) = self.seal([tx]).receipts
        return committed

    def submit_with_body(self, tx: Tx, body: bytes) -> Receipt:
        """`submit` of a transaction naming the off-chain `body` (BodyMismatch if it
        does not): the body is stored once the transaction passed its checks and before
        its block is, so a refused transaction stores nothing. Sent again once committed
        (with another body it names), it stores that body and answers the receipt."""
        committed_before = self.receipt(tx_id(tx))
        if committed_before is not None:
            if not committed_before.ok:
                raise TxFailed(committed_before)
            body_named(tx, body)
            self.blobs.put(body)
            return committed_before
        self.ledger.check_tx(tx)
        body_named(tx, body)
        (receipt,) = self.ledger.simulate(self._next_context(), [tx])
        if not receipt.ok:
            raise TxFailed(receipt)
        self.erased.refuse([cid_for(body)])
        self.blobs.put(body)
        (committed,) = self.seal([tx]).receipts
        return committed

    def bulk_blobs(self, uploader: AccountKeys) -> BlobStore:
        """Where an edge gateway signed by `uploader` stores its bundles: this chain's
        own store (whoever runs an in-process chain owns it)."""
        return self.blobs

    def submit_many(self, txs: Sequence[Tx]) -> list[Receipt | MedchainError]:
        """Each in its own block, in order (see `submit`); a refusal stops nothing."""
        results: list[Receipt | MedchainError] = []
        for tx in txs:
            try:
                results.append(self.submit(tx))
            except MedchainError as exc:
                results.append(exc)
        return results

    def seal(self, txs: Sequence[Tx]) -> SealedBlock:
        """Execute `txs` as the next block, sign it, and persist it."""
        if len(txs) > self.genesis.params.max_block_txs:
            raise StoreError(f"a block holds at most {self.genesis.params.max_block_txs} txs")
        context = self._next_context()
        outcome = self.ledger.execute_block(context, txs)
        header = block_header(self.store.latest_block().header, context, txs, outcome)
        digest = block_hash(header)
        signature = self.validator.sign(
            commit_signing_bytes(self.chain_id, header.height, 0, digest)
        )
        certificate = Certificate(
            header.height, 0, digest, (CommitSig(self.validator.public_key, signature),)
        )
        block = Block(header, tuple(txs), certificate)
        try:
            if self.before_store is not None:
                self.before_store(block, outcome.receipts)
            commit_to_store(self.ledger, self.store, block, outcome.receipts)
        except BaseException:
            self.ledger = self._ledger_from_store()  # memory ran ahead of disk: roll back
            raise
        self.erased.note_block(block, outcome.receipts)
        self.index_committed(block, outcome.receipts)
        return SealedBlock(block, outcome.receipts)

    def _next_context(self) -> BlockContext:
        parent = self.store.latest_block().header
        return BlockContext(
            chain_id=self.chain_id,
            height=parent.height + 1,
            time_ms=max(self._clock(), parent.time_ms + 1),
            proposer=self.validator.address,
            params=self.genesis.params,
        )


@dataclass(frozen=True, slots=True)
class SealedBlock:
    block: Block
    receipts: tuple[Receipt, ...]
