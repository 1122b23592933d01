"""The mempool: admission checks against the committed state, dedupe, arrival order,
the bounds and their errors, the nonce-gap rule, anonymous transactions (bound and
key-image replay), the recheck after a commit; and the signature cache it shares
with the ledger, which saves work and never lets a bad signature through."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.app import (
    AnonSubmitArgs,
    BlockContext,
    CloseScopeArgs,
    FeeTooLow,
    InsufficientFunds,
    InvalidBlock,
    InvalidSignature,
    KeyImageReused,
    KeyRetired,
    KeyWrap,
    Ledger,
    MalformedTx,
    NonceGap,
    NonceReused,
    OpenScopeArgs,
    OrgKind,
    RegisterArgs,
    Role,
    RotateArgs,
    SignatureCache,
    TransferArgs,
    TxTooLarge,
    UnknownScope,
    UpdateProfileArgs,
    WrongChain,
    _signatures,
    get_account,
    rotation_message,
)
from medchain.crypto import WRAPPED_KEY_SIZE, AccountKeys, ring_sign, sha256
from medchain.mempool import AnonymousQueueFull, Mempool, MempoolFull, SenderQueueFull
from medchain.offchain import cid_for
from medchain.types import (
    Allocation,
    ChainParams,
    Genesis,
    GenesisValidator,
    MedchainError,
    Tx,
    encode,
    tx_id,
)
from tests.api.harness import Org

CHAIN = "medchain-mempool"
VALIDATOR = AccountKeys.generate()
ALICE, BOB, CAROL = (AccountKeys.generate() for _ in range(3))
SINK = b"\x09" * 20
SCOPE = "cohort-2027"
INSTITUTE = Org.generate("mempool-institute", OrgKind.RESEARCH)
"""The founding research institute, whose account opens the anonymous scope."""


def _genesis(params: ChainParams | None = None, balance: int = 1_000_000) -> Genesis:
    return Genesis(
        CHAIN,
        0,
        params or ChainParams(min_fee=1),
        tuple(Allocation(k.address, balance) for k in (ALICE, BOB, CAROL)),
        (GenesisValidator(VALIDATOR.public_key, "v0", organisation=INSTITUTE.org_id),),
        organisations=(INSTITUTE.genesis(),),
    )


def _ledger(params: ChainParams | None = None, balance: int = 1_000_000) -> Ledger:
    return Ledger(_genesis(params, balance), verified=SignatureCache())


def _tx(
    keys: AccountKeys,
    nonce: int,
    fee: int = 1,
    amount: int = 1,
    method: str = "accounts.transfer",
    args: object | None = None,
    chain: str = CHAIN,
) -> Tx:
    payload = encode(TransferArgs(SINK, amount) if args is None else args)
    unsigned = Tx(chain, nonce, keys.public_key, fee, method, payload)
    return dataclasses.replace(unsigned, signature=keys.sign(unsigned.signing_bytes()))


class Chain:
    """A ledger and its mempool, committing blocks the way a node does."""

    def __init__(self, ledger: Ledger, **limits: int) -> None:
        self.ledger = ledger
        self.pool = Mempool(ledger, **limits)
        self.height = 0

    def context(self) -> BlockContext:
        self.height += 1
        return BlockContext(
            CHAIN, self.height, self.height, VALIDATOR.address, self.ledger.genesis.params
        )

    def propose_and_commit(self, max_txs: int = 1_000) -> tuple[Tx, ...]:
        """Build a block from the pool (as a proposer), execute it, update the pool."""
        context = self.context()
        txs, _ = self.ledger.build_block(context, self.pool.reap(), max_txs)
        self.ledger.execute_block(context, txs)
        self.pool.update(txs, self.ledger)
        return txs

    def commit_elsewhere(self, *txs: Tx) -> tuple[Tx, ...]:
        """A block some other node proposed (its transactions never reached this pool)."""
        self.ledger.execute_block(self.context(), txs)
        return self.pool.update(txs, self.ledger)


# -- admission ----------------------------------------------------------------------


def test_admits_in_arrival_order_dedupes_and_counts_bytes() -> None:
    pool = Mempool(_ledger())
    txs = [_tx(ALICE, 0), _tx(BOB, 0), _tx(ALICE, 1), _tx(CAROL, 0)]
    for tx in txs:
        assert pool.add(tx)
    assert not pool.add(txs[1])  # already pending
    assert pool.reap() == tuple(txs)
    assert pool.reap(2) == tuple(txs[:2])
    assert len(pool) == 4
    assert pool.size_bytes == sum(len(tx.encoded) for tx in txs)
    assert tx_id(txs[2]) in pool and tx_id(_tx(BOB, 1)) not in pool
    assert pool.get(tx_id(txs[3])) == txs[3]
    assert pool.get(b"\x00" * 32) is None


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (
            lambda: dataclasses.replace(_tx(ALICE, 0), signature=_tx(BOB, 0).signature),
            InvalidSignature,
        ),
        (lambda: _tx(ALICE, 0, chain="another-chain"), WrongChain),
        (lambda: _tx(ALICE, 0, fee=0), FeeTooLow),
        (lambda: _tx(ALICE, 0, fee=10**9), InsufficientFunds),
        (lambda: _tx(ALICE, 1), NonceGap),
        (lambda: _tx(ALICE, 10**15), NonceGap),
    ],
)
def test_admission_refuses_what_cannot_be_valid_next(
    make: Callable[[], Tx], error: type[MedchainError]
) -> None:
    pool = Mempool(_ledger())
    with pytest.raises(error):
        pool.add(make())
    assert len(pool) == 0 and pool.size_bytes == 0


def test_admission_refuses_oversized_and_replayed_transactions() -> None:
    chain = Chain(_ledger(ChainParams(min_fee=1, max_tx_bytes=400)))
    with pytest.raises(TxTooLarge):
        chain.pool.add(
            _tx(
                ALICE,
                0,
                method="registry.update_profile",
                args=UpdateProfileArgs("x", b"\x00" * 500),
            )
        )
    first = _tx(ALICE, 0)
    chain.pool.add(first)
    chain.propose_and_commit()
    with pytest.raises(NonceReused):
        chain.pool.add(first)
    with pytest.raises(NonceReused):
        chain.pool.add(_tx(ALICE, 0, amount=2))  # another transaction for the used nonce


def test_a_nonce_gap_is_fine_only_when_pending_transactions_fill_it() -> None:
    pool = Mempool(_ledger(balance=10))
    with pytest.raises(NonceGap):
        pool.add(_tx(ALICE, 2))
    assert pool.add(_tx(ALICE, 0))
    with pytest.raises(NonceGap):
        pool.add(_tx(ALICE, 2))  # nonce 1 is not pending
    assert pool.add(_tx(ALICE, 1))
    assert pool.add(_tx(ALICE, 2))
    assert pool.add(_tx(ALICE, 1, amount=5))  # a replacement may share a nonce
    # a queued transaction's fee is still checked against the balance now
    with pytest.raises(InsufficientFunds):
        pool.add(_tx(ALICE, 3, fee=11))
    with pytest.raises(FeeTooLow):
        pool.add(_tx(ALICE, 3, fee=0))
    assert pool.next_nonce(ALICE.public_key, 0) == 3
    assert pool.next_nonce(ALICE.public_key, 5) == 5
    assert pool.next_nonce(BOB.public_key, 0) == 0


# -- prepare: every check but the signature, for a node that verifies elsewhere --------


def test_prepare_refuses_what_add_refuses_but_leaves_the_signature_to_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = Chain(_ledger(), max_per_sender=2)
    verifies = _counting(monkeypatch, "verify_signature")
    tx = _tx(ALICE, 0)
    check = chain.pool.prepare(tx)
    assert check is not None and check.key == tx_id(tx) and verifies[0] == 0
    assert chain.pool.add(tx) and verifies[0] == 1
    assert chain.pool.prepare(tx) is None  # already pending: nothing to do
    with pytest.raises(FeeTooLow):
        chain.pool.prepare(_tx(BOB, 0, fee=0))
    chain.pool.add(_tx(ALICE, 1))
    with pytest.raises(SenderQueueFull):
        chain.pool.prepare(_tx(ALICE, 2))
    assert verifies[0] == 2  # refusals cost no verification
    forged = dataclasses.replace(_tx(CAROL, 0), signature=bytes(64))
    check = chain.pool.prepare(forged)
    assert check is not None and not check.run()  # the caller finds out
    with pytest.raises(InvalidSignature):
        chain.pool.add(forged)  # and add never admits it


def test_prepare_lets_a_nonce_gap_through_for_add_to_judge() -> None:
    """Transactions a client sent before this one may still be on their way in."""
    chain = Chain(_ledger())
    ahead = _tx(BOB, 1)
    check = chain.pool.prepare(ahead)
    assert check is not None and check.run()
    with pytest.raises(NonceGap):
        chain.pool.prepare(ahead, gaps_filled=False)
    with pytest.raises(NonceGap):
        chain.pool.add(ahead)
    chain.pool.add(_tx(BOB, 0))
    assert chain.pool.add(ahead)


def test_add_finds_a_check_the_caller_ran_in_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = Chain(_ledger())
    ring = Ring(chain)
    tx = ring.tx(0)
    check = chain.pool.prepare(tx)
    assert check is not None and check.anonymous
    assert check.run()
    assert chain.ledger.verified is not None
    chain.ledger.verified.add(check.key)
    verifies = _counting(monkeypatch, "ring_verify")
    assert chain.pool.add(tx) and verifies[0] == 0


# -- bounds -------------------------------------------------------------------------


def test_the_count_bound_refuses_with_a_clear_error() -> None:
    pool = Mempool(_ledger(), max_txs=2)
    pool.add(_tx(ALICE, 0))
    pool.add(_tx(BOB, 0))
    with pytest.raises(MempoolFull) as refused:
        pool.add(_tx(CAROL, 0))
    assert refused.value.code == "mempool_full"
    message = refused.value.message
    assert "full" in message and "2 transactions" in message and "retry shortly" in message
    assert not pool.add(_tx(ALICE, 0))  # a duplicate is still just a duplicate
    assert len(pool) == 2


def test_the_byte_bound_refuses_with_a_clear_error() -> None:
    one = _tx(ALICE, 0)
    pool = Mempool(_ledger(), max_bytes=len(one.encoded) + 10)
    pool.add(one)
    with pytest.raises(MempoolFull, match=f"{len(one.encoded) + 10} bytes; retry shortly"):
        pool.add(_tx(BOB, 0))
    assert pool.size_bytes == len(one.encoded)


def test_one_account_cannot_fill_the_pool() -> None:
    chain = Chain(_ledger(), max_per_sender=2)
    chain.pool.add(_tx(ALICE, 0))
    chain.pool.add(_tx(ALICE, 1))
    with pytest.raises(SenderQueueFull, match="limit per account") as refused:
        chain.pool.add(_tx(ALICE, 2))
    assert isinstance(refused.value, MempoolFull)  # retry later, like a full pool
    assert chain.pool.add(_tx(BOB, 0))
    chain.propose_and_commit()
    assert chain.pool.add(_tx(ALICE, 2))  # room again once its transactions are in a block


@pytest.mark.parametrize("limit", [0, -1])
def test_limits_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        Mempool(_ledger(), max_anonymous=limit)


# -- anonymous transactions -----------------------------------------------------------


class Ring:
    """Registered patients with ring keys and the founding institute's open scope."""

    def __init__(self, chain: Chain, members: int = 4) -> None:
        self.chain = chain
        self.institution = INSTITUTE.account
        self.members = [AccountKeys.generate() for _ in range(members)]
        funding = [
            _tx(ALICE, i, args=TransferArgs(k.address, 100))
            for i, k in enumerate([self.institution, *self.members])
        ]
        chain.commit_elsewhere(*funding)
        registrations = [
            _tx(
                k,
                0,
                method="registry.register",
                args=RegisterArgs(
                    Role.PATIENT, "", k.encryption_public_key, b"", k.ring_public_key
                ),
            )
            for k in self.members
        ]
        chain.commit_elsewhere(*registrations)
        chain.commit_elsewhere(
            _tx(
                self.institution,
                0,
                method="anon.open_scope",
                args=OpenScopeArgs(SCOPE, Role.PATIENT, len(self.members)),
            )
        )

    def tx(self, signer: int, tag: bytes = b"data") -> Tx:
        ring = sorted(self.members, key=lambda k: k.address)
        args = AnonSubmitArgs(
            SCOPE,
            tuple(k.address for k in ring),
            cid_for(tag),
            sha256(tag),
            (KeyWrap(self.institution.address, b"\x01" * WRAPPED_KEY_SIZE),),
        )
        unsigned = Tx(CHAIN, 0, b"", 0, "anon.submit", encode(args))
        signature = ring_sign(
            unsigned.signing_bytes(),
            [k.ring_public_key for k in ring],
            self.members[signer].ring_secret,
        )
        return dataclasses.replace(unsigned, signature=encode(signature))


def test_one_pending_anonymous_transaction_per_key_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = Chain(_ledger())
    ring = Ring(chain)
    verifies = _counting(monkeypatch, "ring_verify")
    assert chain.pool.add(ring.tx(0))
    with pytest.raises(KeyImageReused, match="already pending"):
        chain.pool.add(ring.tx(0, tag=b"other data"))  # same member, same scope: a replay
    assert verifies[0] == 1  # refused before its ring signature was checked
    assert chain.pool.add(ring.tx(1))  # another member is not blocked
    assert chain.pool.anonymous_count == 2
    with pytest.raises(MalformedTx):
        chain.pool.add(dataclasses.replace(ring.tx(2), signature=b"\x01"))


def test_anonymous_transactions_have_their_own_small_bound() -> None:
    chain = Chain(_ledger(), max_anonymous=1)
    ring = Ring(chain)
    chain.pool.add(ring.tx(0))
    with pytest.raises(AnonymousQueueFull, match="anonymous") as refused:
        chain.pool.add(ring.tx(1))
    assert isinstance(refused.value, MempoolFull)
    assert chain.pool.add(_tx(BOB, 0))  # signed transactions are not held back


def test_recheck_drops_anonymous_transactions_whose_key_image_or_scope_is_gone() -> None:
    chain = Chain(_ledger())
    ring = Ring(chain)
    mine, other = ring.tx(0), ring.tx(1)
    chain.pool.add(mine)
    chain.pool.add(other)
    # another node's block uses member 0's key image with different data
    assert chain.commit_elsewhere(ring.tx(0, tag=b"elsewhere")) == (mine,)
    assert chain.pool.reap() == (other,)
    close = _tx(ring.institution, 1, method="anon.close_scope", args=CloseScopeArgs(SCOPE))
    assert chain.commit_elsewhere(close) == (other,)
    assert len(chain.pool) == 0
    with pytest.raises(UnknownScope):
        chain.pool.add(ring.tx(2))


# -- after a commit -------------------------------------------------------------------


def test_recheck_after_commit_drops_the_stale_and_keeps_the_valid() -> None:
    chain = Chain(_ledger(balance=10))
    a0, a1, a2 = _tx(ALICE, 0), _tx(ALICE, 1), _tx(ALICE, 2)
    a1_replacement = _tx(ALICE, 1, amount=2)
    b0, b1, c0 = _tx(BOB, 0, fee=3), _tx(BOB, 1, fee=3), _tx(CAROL, 0)
    for tx in (a0, a1, a1_replacement, a2, b0, b1, c0):
        chain.pool.add(tx)
    assert chain.propose_and_commit(max_txs=2) == (a0, a1)
    # the committed ones leave, and the replacement, whose nonce is now used
    assert chain.pool.reap() == (a2, b0, b1, c0)
    # another node's block spends Bob's nonce 0 and most of his balance: b0 is
    # stale, b1's fee of 3 exceeds the 1 left; Alice's and Carol's stay
    assert chain.commit_elsewhere(_tx(BOB, 0, fee=1, amount=8)) == (b0, b1)
    assert chain.pool.reap() == (a2, c0)


def test_recheck_drops_transactions_whose_nonce_gap_opened() -> None:
    chain = Chain(_ledger(balance=10))
    b0, b1, b2 = _tx(BOB, 0, fee=1), _tx(BOB, 1, fee=5), _tx(BOB, 2, fee=1)
    for tx in (b0, b1, b2):
        chain.pool.add(tx)
    # Bob spends elsewhere with another nonce-0 transaction: nonce 1 (fee 5) is no
    # longer affordable, and nonce 2 would then wait behind a gap nothing fills
    dropped = chain.commit_elsewhere(_tx(BOB, 0, fee=1, amount=6))
    assert dropped == (b0, b1, b2)
    assert len(chain.pool) == 0 and chain.pool.size_bytes == 0


def test_recheck_drops_a_key_the_account_rotated_away_from() -> None:
    chain = Chain(_ledger())
    new = AccountKeys.generate()
    message = rotation_message(
        CHAIN, ALICE.address, new.public_key, new.encryption_public_key, new.ring_public_key
    )
    rotation = RotateArgs(
        new.public_key, new.encryption_public_key, new.ring_public_key, new.sign(message)
    )
    register = RegisterArgs(Role.PATIENT, "", ALICE.encryption_public_key)
    pending = _tx(ALICE, 2)
    chain.pool.add(_tx(ALICE, 0, method="registry.register", args=register))
    chain.pool.add(_tx(ALICE, 1, method="keys.rotate", args=rotation))
    chain.pool.add(pending)
    assert chain.commit_elsewhere(*chain.pool.reap()[:2]) == (pending,)
    with pytest.raises(KeyRetired):
        chain.pool.add(_tx(ALICE, 2))
    chain.pool.add(_tx(new, 2))  # the new key carries the account's nonce on
    assert len(chain.pool) == 1


# -- property: after any adds and commits, what is pending is admissible ---------------

SENDERS = (ALICE, BOB, CAROL)

_add = st.tuples(
    st.just("add"),
    st.integers(0, 2),  # sender
    st.sampled_from((0, 0, 0, -1, 1)),  # nonce from the sender's next free one: mostly next
    st.sampled_from((1, 1, 2, 5, 0)),  # fee (the minimum is 1)
    st.integers(0, 6),  # amount
)
_commit = st.tuples(st.just("commit"), st.integers(0, 4))
_elsewhere = st.tuples(
    st.just("elsewhere"), st.integers(0, 2), st.integers(1, 3), st.integers(0, 9)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_add, _add, _commit, _elsewhere), min_size=5, max_size=40))
def test_after_any_adds_and_commits_every_pending_tx_is_admissible(
    operations: list[tuple[Any, ...]],
) -> None:
    chain = Chain(_ledger(balance=20), max_txs=8, max_per_sender=4)
    committed: set[bytes] = set()
    for op in operations:
        if op[0] == "add":
            _, who, offset, fee, amount = op
            keys = SENDERS[who]
            nonce = chain.pool.next_nonce(keys.public_key, _nonce(chain, keys)) + offset
            with contextlib.suppress(MedchainError):
                chain.pool.add(_tx(keys, max(nonce, 0), fee, amount))
        elif op[0] == "commit":
            committed |= {tx_id(tx) for tx in chain.propose_and_commit(max_txs=op[1])}
        else:
            _, who, fee, amount = op
            keys = SENDERS[who]
            tx = _tx(keys, _nonce(chain, keys), fee, amount)
            try:
                chain.ledger.check_tx(tx)
            except MedchainError:
                continue
            chain.commit_elsewhere(tx)
            committed.add(tx_id(tx))
        pending = chain.pool.reap()
        assert not committed & {tx_id(tx) for tx in pending}
        assert chain.pool.size_bytes == sum(len(tx.encoded) for tx in pending)
        fresh = Mempool(chain.ledger, max_txs=8, max_per_sender=4)
        for tx in sorted(pending, key=lambda tx: tx.nonce):  # the order nonces fill gaps
            assert fresh.add(tx)


def _nonce(chain: Chain, keys: AccountKeys) -> int:
    return get_account(chain.ledger.state, keys.address).nonce


# -- the signature cache ----------------------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    real = getattr(_signatures, name)

    def counted(*args: Any) -> bool:
        calls[0] += 1
        result: bool = real(*args)
        return result

    monkeypatch.setattr(_signatures, name, counted)
    return calls


def test_a_transaction_admitted_here_is_not_verified_again_in_its_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifies = _counting(monkeypatch, "verify_signature")
    chain = Chain(_ledger())
    txs = [_tx(ALICE, 0), _tx(ALICE, 1), _tx(BOB, 0)]
    for tx in txs:
        chain.pool.add(tx)
    assert verifies[0] == 3
    context = chain.context()
    built, outcome = chain.ledger.build_block(context, chain.pool.reap(), 10)
    assert chain.ledger.dry_run(context, built).state_root == outcome.state_root
    chain.ledger.execute_block(context, built)
    assert verifies[0] == 3
    # without a cache the same block verifies every signature, with the same outcome
    uncached = Ledger(chain.ledger.genesis)
    assert uncached.dry_run(context, built).state_root == outcome.state_root
    assert verifies[0] == 6


def test_the_cache_never_lets_a_tampered_signature_through() -> None:
    chain = Chain(_ledger())
    good = _tx(ALICE, 0)
    chain.pool.add(good)  # verified and cached
    flipped = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    for bad in (
        dataclasses.replace(good, signature=flipped),
        dataclasses.replace(good, signature=_tx(BOB, 0).signature),
        dataclasses.replace(good, signature=b""),
    ):
        assert bad.unsigned() == good.unsigned() and tx_id(bad) != tx_id(good)
        with pytest.raises(InvalidSignature):
            chain.ledger.check_tx(bad)
        with pytest.raises(InvalidSignature):
            chain.pool.add(bad)
        context = chain.context()
        with pytest.raises(InvalidBlock, match="signature"):
            chain.ledger.dry_run(context, [bad])
        assert chain.ledger.build_block(context, [bad], 10)[0] == ()


def test_a_ring_signature_is_cached_under_its_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = Chain(_ledger())
    ring = Ring(chain)
    verifies = _counting(monkeypatch, "ring_verify")
    tx = ring.tx(0)
    chain.pool.add(tx)
    chain.ledger.check_tx(tx)
    assert verifies[0] == 1
    forged = dataclasses.replace(tx, signature=encode(_tampered_ring(tx)))
    with pytest.raises(InvalidSignature):
        chain.ledger.check_tx(forged)
    assert verifies[0] == 2
    assert chain.propose_and_commit() == (tx,)
    assert verifies[0] == 2


def _tampered_ring(tx: Tx) -> Any:
    from medchain.crypto import RingSignature
    from medchain.types import decode

    signature = decode(RingSignature, tx.signature)
    first = bytes([signature.responses[0][0] ^ 1]) + signature.responses[0][1:]
    return dataclasses.replace(signature, responses=(first, *signature.responses[1:]))


def test_the_cache_is_bounded_and_keeps_the_most_recently_used() -> None:
    cache = SignatureCache(capacity=2)
    cache.add(b"a")
    cache.add(b"b")
    assert cache.seen(b"a")  # now the most recent
    cache.add(b"c")
    assert len(cache) == 2
    assert cache.seen(b"a") and cache.seen(b"c") and not cache.seen(b"b")
    with pytest.raises(ValueError, match="at least one"):
        SignatureCache(0)
