"""Verification against anchors: anchor validity, the auditor's integrity checks on
stored rows (tampered with through sqlite3, as an attacker with the disk would), the
comparison with final and pending anchors, and a remote node's hashes.

The chain helpers here are shared with test_restore and test_fork."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.anchor import (
    Anchor,
    ChainAuditor,
    CheckpointSignature,
    Mismatch,
    VerifyReport,
    anchor_is_valid,
    compare_hashes,
    verify_store,
)
from medchain.app import RegisterArgs, Role, TransferArgs
from medchain.consensus import Checkpoint, sign
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import STORE_FILE, LocalChain
from medchain.store import ChainStore, StoreError
from medchain.types import (
    Allocation,
    Block,
    ChainParams,
    Genesis,
    GenesisValidator,
    Tx,
    block_hash,
    decode,
    encode,
    tx_id,
)

CHAIN = "medchain-anchored"
T0 = 1_700_000_000_000
EVERY = 5
"""Checkpoint interval of the test chains."""


@dataclass
class Chain:
    """A single-process chain on disk with four named validators (LocalChain seals
    with the first; anchors are signed by any three of them)."""

    home: Path
    genesis: Genesis
    validators: list[AccountKeys]
    funded: AccountKeys
    local: LocalChain
    nonce: int = 0
    patients: list[tuple[int, AccountKeys]] = dataclasses.field(default_factory=list)
    """Patients registered, with the height of their registration."""

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(k.public_key for k in self.validators)

    @property
    def store(self) -> ChainStore:
        return self.local.store

    @property
    def path(self) -> Path:
        return self.home / STORE_FILE

    def tx(self, method: str, args: object) -> Tx:
        """The next transaction of the funded account."""
        tx = signed_tx(self.funded, CHAIN, self.nonce, method, args, 0)
        self.nonce += 1
        return tx

    def transfer(self, to: bytes, amount: int) -> Tx:
        return self.tx("accounts.transfer", TransferArgs(to, amount))

    def grow(self, blocks: int) -> None:
        """Blocks with a transfer each; every third also registers a patient."""
        for _ in range(blocks):
            height = self.store.latest_height() + 1
            txs = [self.transfer(recipient(height), 10 + height)]
            if height % 3 == 0:
                patient = AccountKeys.generate()
                self.patients.append((height, patient))
                args = RegisterArgs(Role.PATIENT, "", patient.encryption_public_key)
                txs.append(signed_tx(patient, CHAIN, 0, "registry.register", args, 0))
            self.local.seal(txs)

    def anchors(
        self, upto: int | None = None, *, final: bool = True, signers: int = 3
    ) -> list[Anchor]:
        """Anchors of the stored chain at every checkpoint height up to `upto`."""
        top = self.store.latest_height() if upto is None else upto
        result = []
        for height in range(EVERY, top + 1, EVERY):
            block = self.store.block_at(height)
            assert block is not None
            result.append(
                make_anchor(
                    self.validators[:signers],
                    height,
                    block_hash(block.header),
                    block.header.state_root,
                    final=final,
                )
            )
        return result


def recipient(height: int) -> bytes:
    """Who `Chain.grow` pays in the block at `height` (10 + height tokens)."""
    return bytes([height % 250 + 1]) * 20


def make_chain(
    home: Path, blocks: int = 0, *, validators: int = 4, params: ChainParams | None = None
) -> Chain:
    keys = [AccountKeys.generate() for _ in range(validators)]
    funded = AccountKeys.generate()
    genesis = Genesis(
        CHAIN,
        T0,
        params or ChainParams(checkpoint_interval=EVERY),
        (Allocation(funded.address, 10**9),),
        tuple(GenesisValidator(k.public_key, f"v{i}") for i, k in enumerate(keys)),
    )
    ticks = iter(range(T0 + 1_000, 2**62, 1_000))
    local = LocalChain.create(home, genesis, keys[0])
    local._clock = lambda: next(ticks)  # deterministic block times
    chain = Chain(home, genesis, keys, funded, local)
    chain.grow(blocks)
    return chain


def make_anchor(
    signers: Sequence[AccountKeys],
    height: int,
    block_id: bytes,
    state_root: bytes,
    *,
    chain_id: str = CHAIN,
    final: bool = True,
    eth_block: int | None = None,
) -> Anchor:
    signatures = tuple(
        CheckpointSignature(
            k.public_key,
            sign(chain_id, Checkpoint(height, block_id, state_root, k.public_key), k).signature,
        )
        for k in sorted(signers, key=lambda k: k.public_key)
    )
    return Anchor(
        chain_id,
        height,
        block_id,
        state_root,
        signatures,
        "0x" + "11" * 20,
        100 + height if eth_block is None else eth_block,
        height.to_bytes(32, "big"),
        final,
    )


def rewrite(path: Path, height: int, block: Block, *, hash_column: bool = False) -> None:
    """Overwrite a stored block's row as an attacker with the file would."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE blocks SET data = ? WHERE height = ?", (encode(block), height))
        if hash_column:
            db.execute(
                "UPDATE blocks SET hash = ? WHERE height = ?", (block_hash(block.header), height)
            )
    db.close()


def set_row(path: Path, height: int, column: str, value: bytes) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE blocks SET {column} = ? WHERE height = ?", (value, height))
    db.close()


def other_tx(chain: Chain, block: Block) -> Block:
    """`block` with its first transaction swapped for another validly signed one."""
    forged = signed_tx(chain.funded, CHAIN, block.txs[0].nonce, "accounts.transfer",
                       TransferArgs(b"\xee" * 20, 999_999), 0)  # fmt: skip
    return dataclasses.replace(block, txs=(forged, *block.txs[1:]))


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    made = make_chain(tmp_path / "node", 30)
    yield made
    made.local.close()


def _block(chain: Chain, height: int) -> Block:
    block = chain.store.block_at(height)
    assert block is not None
    return block


def _audit(chain: Chain, anchors: Sequence[Anchor]) -> VerifyReport:
    return verify_store(chain.store, anchors, chain.keys)


# -- anchor validity ------------------------------------------------------------------


def test_an_anchor_needs_a_quorum_of_distinct_valid_validator_signatures(chain: Chain) -> None:
    block = _block(chain, 5)
    args = (5, block_hash(block.header), block.header.state_root)
    keys, v = chain.keys, chain.validators
    assert anchor_is_valid(make_anchor(v[:3], *args), keys, 3)
    assert anchor_is_valid(make_anchor(v, *args), keys, 3)
    assert not anchor_is_valid(make_anchor(v[:2], *args), keys, 3)  # too few
    assert not anchor_is_valid(make_anchor([], *args), keys, 0)  # never unsigned
    outsider = AccountKeys.generate()
    assert not anchor_is_valid(make_anchor([*v[:3], outsider], *args), keys, 3)
    twice = make_anchor(v[:2], *args)
    doubled = dataclasses.replace(twice, signatures=(*twice.signatures, twice.signatures[0]))
    assert not anchor_is_valid(doubled, keys, 3)  # one validator counted twice
    good = make_anchor(v[:3], *args)
    forged = CheckpointSignature(good.signatures[0].validator, b"\x01" * 64)
    assert not anchor_is_valid(
        dataclasses.replace(good, signatures=(forged, *good.signatures[1:])), keys, 3
    )
    # the signatures cover height, block hash, state root and chain id
    for change in (
        {"height": 10},
        {"block_hash": b"\x02" * 32},
        {"state_root": b"\x03" * 32},
        {"chain_id": "another-chain"},
    ):
        assert not anchor_is_valid(dataclasses.replace(good, **change), keys, 3)


# -- a clean chain --------------------------------------------------------------------


def test_a_clean_chain_verifies_up_to_its_last_final_anchor(chain: Chain) -> None:
    report = _audit(chain, chain.anchors(upto=20) + chain.anchors(upto=25, final=False)[-1:])
    assert report.ok and report.first_mismatch is None and report.pending_mismatch is None
    assert report.chain_id == CHAIN
    assert (report.tip_height, report.checked_height) == (30, 30)
    assert report.last_verified_height == 20  # 25 is anchored, but not final yet
    assert (report.anchors_total, report.anchors_final, report.anchors_pending) == (5, 4, 1)
    assert report.invalid_anchors == () and report.anchors_unchecked == 0
    document = report.to_json()
    assert document["ok"] is True and document["last_verified_height"] == 20
    assert document["first_mismatch"] is None


def test_no_anchors_verify_nothing_but_the_chain_is_still_checked(chain: Chain) -> None:
    report = _audit(chain, [])
    assert report.ok and report.last_verified_height == -1 and report.checked_height == 30


# -- tampered rows --------------------------------------------------------------------


def test_a_changed_transaction_is_a_tx_root_mismatch(chain: Chain) -> None:
    rewrite(chain.path, 12, other_tx(chain, _block(chain, 12)))
    report = _audit(chain, chain.anchors())
    mismatch = report.first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (12, "tx_root")
    assert mismatch.expected == _block(chain, 12).header.tx_root != mismatch.found
    assert report.last_verified_height == 10  # the last final anchor below the damage


def test_a_rewritten_header_with_a_fixed_hash_column_breaks_the_link_above(chain: Chain) -> None:
    block = _block(chain, 12)
    header = dataclasses.replace(block.header, time_ms=block.header.time_ms + 1)
    rewrite(chain.path, 12, dataclasses.replace(block, header=header), hash_column=True)
    report = _audit(chain, chain.anchors())
    mismatch = report.first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (13, "link")
    assert mismatch.expected == block_hash(header)
    assert mismatch.found == block_hash(block.header)
    assert report.last_verified_height == 10


def test_a_rewritten_header_without_its_hash_is_a_stored_hash_mismatch(chain: Chain) -> None:
    block = _block(chain, 7)
    header = dataclasses.replace(block.header, state_root=b"\x09" * 32)
    rewrite(chain.path, 7, dataclasses.replace(block, header=header))
    mismatch = _audit(chain, chain.anchors()).first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (7, "stored_hash")
    assert (mismatch.expected, mismatch.found) == (block_hash(header), block_hash(block.header))


def test_a_row_that_does_not_decode_and_a_deleted_row_are_reported(chain: Chain) -> None:
    set_row(chain.path, 9, "data", b"\xc3\x01\x02\x03")
    with sqlite3.connect(chain.path) as db:
        db.execute("DELETE FROM blocks WHERE height = 4")
    db.close()
    report = _audit(chain, chain.anchors())
    assert report.first_mismatch is not None
    assert (report.first_mismatch.height, report.first_mismatch.what) == (4, "missing")
    assert report.last_verified_height == -1
    with sqlite3.connect(chain.path) as db:
        db.execute("UPDATE blocks SET height = 4 WHERE height = 5")  # the gap moves
    db.close()
    mismatch = _audit(chain, []).first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (4, "link")


def test_a_row_that_does_not_decode_is_a_stored_hash_mismatch(chain: Chain) -> None:
    set_row(chain.path, 9, "data", encode(_block(chain, 9))[:-1])
    mismatch = _audit(chain, chain.anchors()).first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (9, "stored_hash")
    assert "decode" in mismatch.detail


# -- anchors that disagree -------------------------------------------------------------


def _conflicting(chain: Chain, height: int, **kwargs: object) -> Anchor:
    return make_anchor(
        chain.validators[1:], height, b"\x5a" * 32, _block(chain, height).header.state_root,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_final_anchor_that_names_another_block_is_the_alarm(chain: Chain) -> None:
    anchors = [a for a in chain.anchors() if a.height != 20] + [_conflicting(chain, 20)]
    report = _audit(chain, anchors)
    mismatch = report.first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (20, "block_hash")
    assert mismatch.expected == b"\x5a" * 32
    assert mismatch.found == block_hash(_block(chain, 20).header)
    assert report.last_verified_height == 15
    assert not report.ok and report.to_json()["first_mismatch"]["what"] == "block_hash"


def test_a_state_root_mismatch(chain: Chain) -> None:
    block = _block(chain, 10)
    anchor = make_anchor(chain.validators[:3], 10, block_hash(block.header), b"\x44" * 32)
    report = _audit(chain, [*chain.anchors(upto=5), anchor])
    assert report.first_mismatch is not None
    assert (report.first_mismatch.what, report.first_mismatch.found) == (
        "state_root",
        block.header.state_root,
    )
    assert report.last_verified_height == 5


def test_a_pending_mismatch_is_only_a_warning(chain: Chain) -> None:
    anchors = [*chain.anchors(upto=20), _conflicting(chain, 25, final=False)]
    report = _audit(chain, anchors)
    assert report.ok and report.last_verified_height == 20
    assert report.pending_mismatch is not None
    assert (report.pending_mismatch.height, report.pending_mismatch.what) == (25, "block_hash")
    assert "pending" in report.pending_mismatch.detail


def test_invalid_anchors_are_reported_and_never_trusted(chain: Chain) -> None:
    few = _conflicting(chain, 20)
    few = dataclasses.replace(few, signatures=few.signatures[:2])
    outsiders = [AccountKeys.generate() for _ in range(3)]
    forged = make_anchor(outsiders, 25, b"\x66" * 32, b"\x77" * 32)
    other_chain = make_anchor(chain.validators[:3], 15, b"\x12" * 32, b"\x34" * 32,
                              chain_id="another")  # fmt: skip
    anchors = [*chain.anchors(upto=10), few, forged, other_chain]
    report = _audit(chain, anchors)
    assert report.ok and report.invalid_anchors == (15, 20, 25)
    assert report.last_verified_height == 10


def test_a_valid_final_anchor_counts_over_an_invalid_or_later_one(chain: Chain) -> None:
    good = chain.anchors()[3]  # height 20
    forged = dataclasses.replace(_conflicting(chain, 20, eth_block=1), signatures=())
    later = _conflicting(chain, 20, eth_block=good.eth_block + 5)
    report = _audit(chain, [forged, good, later])
    assert report.ok and report.last_verified_height == 20 and report.invalid_anchors == (20,)


# -- the auditor, step by step ------------------------------------------------------------


def test_the_auditor_follows_the_chain_and_its_sweep_finds_old_edits(chain: Chain) -> None:
    auditor = ChainAuditor(chain.store, chain.keys, max_new_blocks=20)
    report = auditor.step(chain.anchors(), max_blocks=0)
    assert (report.checked_height, report.last_verified_height) == (19, 15)  # bounded
    report = auditor.step(chain.anchors(), max_blocks=0)
    assert (report.checked_height, report.last_verified_height) == (30, 30)
    chain.grow(6)
    original = _block(chain, 3)
    rewrite(chain.path, 3, other_tx(chain, original))  # an old, checked block
    report = auditor.step(chain.anchors(), max_blocks=0)
    assert report.ok and report.checked_height == 36  # new blocks only: not seen yet
    report = auditor.step(chain.anchors(), max_blocks=10)  # the sweep reaches it
    assert report.first_mismatch is not None
    assert (report.first_mismatch.height, report.first_mismatch.what) == (3, "tx_root")
    assert report.last_verified_height == -1
    rewrite(chain.path, 3, original)
    for _ in range(4):  # a whole sweep round later the repaired row is clean again
        report = auditor.step(chain.anchors(), max_blocks=10)
    assert report.ok and report.last_verified_height == 35
    auditor.close()


def test_a_sweep_bounded_by_bytes_reads_about_that_much_and_still_goes_round(
    chain: Chain,
) -> None:
    auditor = ChainAuditor(chain.store, chain.keys)
    assert auditor.step(chain.anchors(), sweep_bytes=1).ok  # all new: checked anyway
    sizes = [len(encode(_block(chain, h))) for h in range(chain.store.latest_height() + 1)]
    original = _block(chain, 20)
    rewrite(chain.path, 20, other_tx(chain, original))
    budget = sum(sizes[:5])  # about five blocks a step
    steps = 0
    report = auditor.step(chain.anchors(), sweep_bytes=budget)
    while report.first_mismatch is None:
        steps += 1
        assert steps < len(sizes), "the sweep never reached the edited block"
        report = auditor.step(chain.anchors(), sweep_bytes=budget)
    assert (report.first_mismatch.height, report.first_mismatch.what) == (20, "tx_root")
    assert 2 <= steps <= 5  # neither all at once nor slower than the budget allows
    auditor.close()


def test_a_block_larger_than_a_steps_budget_waits_for_the_steps_it_needs(
    chain: Chain,
) -> None:
    auditor = ChainAuditor(chain.store, chain.keys)
    auditor.step(chain.anchors(), sweep_bytes=1)
    sizes = [len(encode(_block(chain, h))) for h in range(chain.store.latest_height() + 1)]
    original = _block(chain, 20)
    rewrite(chain.path, 20, other_tx(chain, original))
    sizes[20] = len(encode(_block(chain, 20)))
    budget = min(sizes) // 2  # every block needs two steps or more
    steps = 1
    while auditor.step(chain.anchors(), sweep_bytes=budget).first_mismatch is None:
        steps += 1
        assert steps < 10 * len(sizes), "the sweep never reached the edited block"
    assert abs(steps - sum(sizes[:21]) / budget) <= 2  # the average rate holds
    auditor.close()


def test_without_new_bodies_only_the_sweep_reads_transactions(chain: Chain) -> None:
    original = _block(chain, 4)
    rewrite(chain.path, 4, other_tx(chain, original))
    auditor = ChainAuditor(chain.store, chain.keys, check_new_bodies=False)
    report = auditor.step(chain.anchors(), max_blocks=0)
    assert report.ok and report.checked_height == chain.store.latest_height()  # headers only
    report = auditor.step(chain.anchors(), max_blocks=10)
    assert report.first_mismatch is not None
    assert (report.first_mismatch.height, report.first_mismatch.what) == (4, "tx_root")
    auditor.close()


def test_anchors_that_arrive_after_their_blocks_were_checked(chain: Chain) -> None:
    auditor = ChainAuditor(chain.store, chain.keys)
    assert auditor.step([], max_blocks=0).last_verified_height == -1
    report = auditor.step(chain.anchors(), max_blocks=0)
    assert report.last_verified_height == 30
    report = auditor.step([*chain.anchors(upto=15), _conflicting(chain, 20)], max_blocks=0)
    assert report.first_mismatch is not None and report.first_mismatch.height == 20
    auditor.close()


def test_the_auditor_bounds_signature_checks_per_step(chain: Chain) -> None:
    auditor = ChainAuditor(chain.store, chain.keys, max_anchor_checks=2)
    report = auditor.step(chain.anchors(), max_blocks=0)
    # the verdict needed one (the top anchor), the budget allowed two more
    assert report.last_verified_height == 30 and report.anchors_unchecked == 3
    assert auditor.step(chain.anchors(), max_blocks=0).anchors_unchecked == 1
    assert auditor.step(chain.anchors(), max_blocks=0).anchors_unchecked == 0
    auditor.close()


def test_the_auditor_reads_a_store_on_disk_only() -> None:
    with pytest.raises(StoreError, match="on disk"):
        ChainAuditor(ChainStore(Path(":memory:")), ())


def test_the_auditor_reads_while_the_node_writes(chain: Chain) -> None:
    auditor = ChainAuditor(chain.store, chain.keys)
    for _ in range(3):
        chain.grow(5)
        report = auditor.step(chain.anchors(), max_blocks=7)
        assert report.ok and report.checked_height == chain.store.latest_height()
    auditor.close()


# -- a remote node's hashes ---------------------------------------------------------------


def _served(chain: Chain) -> dict[int, tuple[bytes, bytes]]:
    return {
        h: (block_hash(b.header), b.header.state_root)
        for h, b in ((h, _block(chain, h)) for h in range(EVERY, 31, EVERY))
    }


def test_compare_hashes_of_a_remote_chain(chain: Chain) -> None:
    anchors = chain.anchors()
    served = _served(chain)
    report = compare_hashes(served, anchors, chain.keys)
    assert report.ok and report.last_verified_height == 30 and report.chain_id == CHAIN
    forked = {**served, 20: (b"\x01" * 32, served[20][1]), 25: (b"\x02" * 32, b"\x03" * 32)}
    report = compare_hashes(forked, anchors, chain.keys)
    assert report.first_mismatch is not None
    assert report.first_mismatch == Mismatch(
        20, "block_hash", anchors[3].block_hash, b"\x01" * 32, report.first_mismatch.detail
    )
    assert report.last_verified_height == 15
    gap = {h: v for h, v in served.items() if h != 10}
    mismatch = compare_hashes(gap, anchors, chain.keys).first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (10, "missing")
    behind = {h: v for h, v in served.items() if h <= 15}
    report = compare_hashes(behind, anchors, chain.keys)
    assert report.ok and report.tip_height == 15 and report.last_verified_height == 15
    with pytest.raises(ValueError, match="several chains"):
        compare_hashes(served, [*anchors, dataclasses.replace(anchors[0], chain_id="x")], ())


# -- properties ---------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(height=st.integers(1, 30), position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_any_flipped_byte_in_a_stored_block_is_caught_at_or_below_its_height(
    chain: Chain, height: int, position: int, flip: int
) -> None:
    """Flip one byte of a block's row (other than its unsigned certificate): the
    auditor reports a mismatch at that height or the one above (a header edit whose
    hash column was also fixed shows at the link above)."""
    original = _block(chain, height)
    anchors = chain.anchors()
    data = bytearray(encode(original))
    signed_part = len(data) - len(encode(original.certificate))
    index = position % signed_part
    data[index] ^= flip
    set_row(chain.path, height, "data", bytes(data))
    try:
        report = _audit(chain, anchors)
        assert report.first_mismatch is not None
        assert report.first_mismatch.height in (height, height + 1)
        assert report.last_verified_height < height
    finally:
        set_row(chain.path, height, "data", encode(original))
    assert _audit(chain, anchors).ok


def test_the_recomputed_id_is_the_block_hash_of_the_decoded_header(chain: Chain) -> None:
    """The auditor hashes the stored header bytes without re-encoding them; strict
    decoding makes that the same id the node computes."""
    with sqlite3.connect(chain.path) as db:
        rows = db.execute("SELECT hash, data FROM blocks").fetchall()
    db.close()
    for hash_, data in rows:
        assert block_hash(decode(Block, data).header) == hash_
    assert _audit(chain, []).ok


@settings(max_examples=300, deadline=None)
@given(
    chain_id=st.text(max_size=12),
    height=st.integers(0, 2**64),
    prev=st.binary(max_size=40),
    time_ms=st.integers(0, 2**64),
    vrf=st.binary(max_size=90),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=2),
    cut=st.integers(0, 3),
)
def test_the_fast_header_reader_accepts_exactly_what_strict_decoding_does(
    chain_id: str, height: int, prev: bytes, time_ms: int, vrf: bytes,
    edits: list[tuple[int, int]], cut: int,
) -> None:  # fmt: skip
    from medchain.anchor._verify import _header
    from medchain.types import DecodeError, Header

    header = Header(chain_id, height, prev, time_ms, b"\x01" * 20, b"\x02" * 32, b"", b"\x03" * 32,
                    vrf)  # fmt: skip
    data = bytearray(encode(header))
    for position, value in edits:
        data[position % len(data)] = value
    raw = bytes(data[: len(data) - cut] if cut < len(data) else data)
    try:
        strict: Header | None = decode(Header, raw)
    except DecodeError:
        strict = None
    try:
        fast: Header | None = _header(raw, 0, len(raw))
    except ValueError:
        fast = None
    assert fast == strict


# -- a store joined from a snapshot --------------------------------------------------


def joined_copy(chain: Chain, path: Path, base: int) -> ChainStore:
    """A store that joined `chain` at `base` (a snapshot) and committed the rest."""
    store = ChainStore(path)
    first = chain.store.block_at(base)
    assert first is not None
    store.initialise_from_snapshot(CHAIN, chain.store.genesis_hash, first, state=[])
    for block in chain.store.blocks(base + 1):
        receipts = [chain.store.receipt(tx_id(tx)) for tx in block.txs]
        store.commit_block(block, [r for r in receipts if r is not None], {}, {})
    return store


def test_a_store_joined_from_a_snapshot_is_audited_from_its_base(
    chain: Chain, tmp_path: Path
) -> None:
    anchors = chain.anchors()
    tip, top_anchor = chain.store.latest_height(), anchors[-1].height
    path = tmp_path / "joined.sqlite"
    with joined_copy(chain, path, 12) as joined:
        auditor = ChainAuditor(joined, chain.keys)
        try:
            report = auditor.step(anchors, max_blocks=50)
            assert report.first_mismatch is None and report.pending_mismatch is None
            assert (report.checked_height, report.last_verified_height) == (tip, top_anchor)
            for height in range(11, -1, -1):  # the backfill
                block = chain.store.block_at(height)
                assert block is not None
                joined.insert_past_block(block)
            report = auditor.step(anchors, max_blocks=50)
            assert report.first_mismatch is None and report.last_verified_height == top_anchor
            rewrite(path, 5, other_tx(chain, joined.block_at(5)))  # type: ignore[arg-type]
            report = auditor.step(anchors, max_blocks=50)
            assert report.first_mismatch is not None and report.first_mismatch.height == 5
        finally:
            auditor.close()
