"""Hard fork: a new genesis from the last anchored good state, its file format, and
a chain that starts from it with a new validator set."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medchain.anchor import Anchor
from medchain.app import (
    AmountArgs,
    BlockContext,
    State,
    TransferArgs,
    TxRejected,
    VoteArgs,
    banned_accounts,
    get_account,
    get_ban,
    get_candidate,
    get_identity,
    get_stake,
    is_banned,
    ranked_candidates,
    unvested_rewards,
    validator_set,
)
from medchain.app._genesis import BANNED_FOREVER, genesis_state
from medchain.app._penalties import _ban
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import (
    ForkError,
    LedgerApp,
    fork_anchor,
    fork_genesis,
    fork_home,
    fork_validators,
    genesis_from_json,
    genesis_hash,
    genesis_to_json,
)
from medchain.store import ChainStore
from medchain.types import (
    Allocation,
    ChainParams,
    ForkOrigin,
    Genesis,
    GenesisError,
    GenesisValidator,
    MedchainError,
    StateEntry,
    block_hash,
)
from tests.anchor.test_verify import (
    CHAIN,
    EVERY,
    Chain,
    make_anchor,
    make_chain,
    recipient,
)

FORK = "medchain-fork"
FORK_TIME = 1_800_000_000_000


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    """30 blocks; along the way the funded account stakes, votes for the old
    validator v1 and starts unbonding part of its stake."""
    made = make_chain(tmp_path / "node", 12)
    v1 = made.validators[1].address
    made.local.seal([made.tx("staking.stake", AmountArgs(1_000))])  # 13
    made.local.seal([made.tx("staking.vote", VoteArgs(v1, 600))])  # 14
    made.local.seal([made.tx("staking.unstake", AmountArgs(100))])  # 15: due at 115
    made.grow(15)
    yield made
    made.local.close()


def _honest(chain: Chain) -> list[AccountKeys]:
    """The new validator set: v0 stays, three new operators join."""
    return [chain.validators[0], *(AccountKeys.generate() for _ in range(3))]


def _validators(keys: list[AccountKeys]) -> tuple[GenesisValidator, ...]:
    return tuple(GenesisValidator(k.public_key, f"n{i}") for i, k in enumerate(keys))


def _anchor(chain: Chain, height: int) -> Anchor:
    return next(a for a in chain.anchors() if a.height == height)


def _fork(chain: Chain, height: int = 20, keys: list[AccountKeys] | None = None) -> Genesis:
    return fork_genesis(
        chain.store,
        chain.genesis,
        _anchor(chain, height),
        chain_id=FORK,
        validators=_validators(keys or _honest(chain)),
        time_ms=FORK_TIME,
    )


def test_the_fork_genesis_carries_the_anchored_state_and_nothing_after(chain: Chain) -> None:
    anchor = _anchor(chain, 20)
    fork = _fork(chain)
    assert fork.origin == ForkOrigin(CHAIN, 20, anchor.block_hash, anchor.state_root)
    assert fork.params == chain.genesis.params and fork.allocations == ()
    snapshot = State({e.key: e.value for e in fork.state})
    block = chain.store.block_at(20)
    assert block is not None and snapshot.root() == anchor.state_root == block.header.state_root
    for height in range(1, 31):
        paid = height <= 20 and height not in (13, 14, 15)  # those blocks held staking
        expected = 10 + height if paid else 0
        assert get_account(snapshot, recipient(height)).balance == expected
    for height, patient in chain.patients:
        assert (get_identity(snapshot, patient.address) is not None) == (height <= 20)
    assert get_account(snapshot, chain.funded.address).nonce == 20  # 17 transfers, 3 staking


def test_the_new_validators_and_only_they_can_be_elected(chain: Chain) -> None:
    honest = _honest(chain)
    state = genesis_state(_fork(chain, keys=honest))
    assert validator_set(state) == tuple(k.public_key for k in honest)
    assert [c.address for c in ranked_candidates(state)] == sorted(k.address for k in honest)
    for keys in honest:
        identity = get_identity(state, keys.address)
        assert identity is not None and identity.public_key == keys.public_key
    for old in chain.validators[1:]:
        assert get_candidate(state, old.address) is None
        assert get_ban(state, old.address) == BANNED_FOREVER
        assert is_banned(state, old.address, 10**15)
    assert not is_banned(state, chain.validators[0].address, 1)
    stake = get_stake(state, chain.funded.address)  # its votes for v1 are free again
    assert (stake.bonded, stake.votes) == (900, ())
    assert [(u.amount, u.release_height) for u in stake.unbonding] == [(100, 115 - 20)]


def test_a_ledger_app_started_from_the_fork_commits_new_blocks(chain: Chain) -> None:
    honest = _honest(chain)
    fork = _fork(chain, keys=honest)
    app = LedgerApp(fork)
    assert app.validators() == tuple(k.public_key for k in honest)
    assert app.ledger.state_root() == app.last_block().header.state_root
    with pytest.raises(TxRejected):  # signed for the parent chain: not valid here
        app.add_tx(signed_tx(chain.funded, CHAIN, 20, "accounts.transfer",
                             TransferArgs(b"\x42" * 20, 5), 0))  # fmt: skip
    context = BlockContext(FORK, 1, FORK_TIME + 1, honest[1].address, fork.params)
    vote = signed_tx(chain.funded, FORK, 20, "staking.vote",
                     VoteArgs(chain.validators[2].address, 10), 0)  # fmt: skip
    (refused,) = app.ledger.simulate(context, [vote])
    assert not refused.ok and "not a declared candidate" in refused.message
    replica = LedgerApp(fork)
    for height in (1, 2):
        app.add_tx(signed_tx(chain.funded, FORK, 19 + height, "accounts.transfer",
                             TransferArgs(b"\x42" * 20, 5), 0))  # fmt: skip
        block = app.propose(height, FORK_TIME + 1_000 * height, honest[height].public_key)
        assert len(block.txs) == 1
        assert replica.validate(block) is None
        app.commit(block)
        replica.commit(block)
    assert replica.last_block() == app.last_block()
    assert app.height == 2
    assert get_account(app.ledger.state, b"\x42" * 20).balance == 10


def test_fork_genesis_json_round_trips_and_new_chains_keep_their_format(chain: Chain) -> None:
    fork = _fork(chain)
    text = genesis_to_json(fork)
    document = json.loads(text)
    assert document["fork_of"] == {
        "chain_id": CHAIN,
        "height": 20,
        "block_hash": fork.fork_of[0].block_hash.hex(),
        "state_root": fork.fork_of[0].state_root.hex(),
    }
    assert document["state"][0] == {
        "key": fork.state[0].key.hex(),
        "value": fork.state[0].value.hex(),
    }
    assert genesis_from_json(text) == fork
    assert genesis_hash(genesis_from_json(text)) == genesis_hash(fork)
    plain = json.loads(genesis_to_json(chain.genesis))
    assert "fork_of" not in plain and "state" not in plain
    assert genesis_from_json(genesis_to_json(chain.genesis)) == chain.genesis


def test_a_new_chains_genesis_hash_is_unchanged_by_the_fork_fields() -> None:
    """Pinned from the release before forks existed: every data directory stores it."""
    genesis = Genesis(
        "medchain-pinned",
        1_700_000_000_000,
        ChainParams(min_fee=3, consensus="afbft"),
        (Allocation(b"\x11" * 20, 1000), Allocation(b"\x22" * 20, 5)),
        (GenesisValidator(b"\x33" * 32, "v0"), GenesisValidator(b"\x44" * 32, "v1", 2)),
    )
    assert genesis_hash(genesis).hex() == (
        "c1d98cffb1d1768411eb5d818141c051b6699b4209fc176c06a4a1b808936ae9"
    )
    origin = ForkOrigin("medchain-pinned", 5, b"\x01" * 32, b"\x02" * 32)
    assert genesis_hash(dataclasses.replace(genesis, fork_of=(origin,))) != genesis_hash(genesis)


def test_parameters_added_later_leave_stored_genesis_hashes_alone() -> None:
    """Pinned from the release before `max_block_anonymous_txs`: a genesis setting a
    device parameter hashed its parameters with the device ones last."""
    genesis = Genesis(
        "medchain-pinned",
        1_700_000_000_000,
        ChainParams(min_fee=3, consensus="afbft", device_strikes_ban=9),
        (Allocation(b"\x11" * 20, 1000),),
        (GenesisValidator(b"\x33" * 32, "v0"),),
    )
    origin = ForkOrigin("medchain-pinned", 5, b"\x01" * 32, b"\x02" * 32)
    fork = dataclasses.replace(genesis, fork_of=(origin,))
    assert genesis_hash(genesis).hex() == (
        "7894d2b566b4bf08bfa27f7ce598201feefa7fc86d99c140a8919519eff673a6"
    )
    assert genesis_hash(fork).hex() == (
        "87644207b66fbf41e92780ab422a2b7400deb28cc42f3c07e894c29dc78eb3b7"
    )
    capped = ChainParams(min_fee=3, consensus="afbft", max_block_anonymous_txs=4)
    for changed in (
        dataclasses.replace(genesis, params=capped),
        dataclasses.replace(fork, params=capped),
    ):
        assert genesis_hash(changed) not in (genesis_hash(genesis), genesis_hash(fork))
        assert genesis_hash(genesis_from_json(genesis_to_json(changed))) == genesis_hash(changed)


def test_a_corrupt_fork_genesis_is_refused(chain: Chain) -> None:
    fork = _fork(chain)
    document = json.loads(genesis_to_json(fork))
    document["state"][3]["value"] = "00" + document["state"][3]["value"]
    corrupt = genesis_from_json(json.dumps(document))
    with pytest.raises(GenesisError, match="corrupt"):
        LedgerApp(corrupt)
    shuffled = dataclasses.replace(fork, state=(fork.state[1], fork.state[0], *fork.state[2:]))
    with pytest.raises(GenesisError, match="ascending"):
        genesis_state(shuffled)
    with pytest.raises(GenesisError, match="no fork origin"):
        genesis_state(dataclasses.replace(fork, fork_of=()))
    with pytest.raises(GenesisError, match="no validators"):
        genesis_state(dataclasses.replace(fork, validators=()))


def test_fork_genesis_refuses_what_it_cannot_trust(chain: Chain) -> None:
    good = _anchor(chain, 20)
    honest = _validators(_honest(chain))

    def fork(anchor: Anchor = good, **kwargs: object) -> Genesis:
        options: dict[str, object] = {"chain_id": FORK, "validators": honest, "time_ms": FORK_TIME}
        options.update(kwargs)
        return fork_genesis(chain.store, chain.genesis, anchor, **options)  # type: ignore[arg-type]

    with pytest.raises(ForkError, match="not final"):
        fork(dataclasses.replace(good, final=False))
    with pytest.raises(ForkError, match="quorum"):
        fork(dataclasses.replace(good, signatures=good.signatures[:2]))
    with pytest.raises(ForkError, match="chain id of its own"):
        fork(chain_id=CHAIN)
    with pytest.raises(ForkError, match="at least one validator"):
        fork(validators=())
    with pytest.raises(ForkError, match="distinct"):
        fork(validators=(honest[0], honest[0]))
    with pytest.raises(ForkError, match="before the anchored block"):
        fork(time_ms=1)
    conflicting = make_anchor(chain.validators[:3], 20, b"\x66" * 32, good.state_root)
    with pytest.raises(ForkError, match="does not replay to the anchored block"):
        fork(conflicting)
    beyond = make_anchor(chain.validators[:3], 35, b"\x66" * 32, good.state_root)
    with pytest.raises(ForkError, match="sync"):
        fork(beyond)
    patient = chain.patients[0][1]
    with pytest.raises(GenesisError, match="registered as a patient"):
        fork(validators=(*honest, GenesisValidator(patient.public_key, "sneaky")))


def test_vesting_rewards_bans_and_unbonding_move_to_the_forks_heights(tmp_path: Path) -> None:
    """A parent that mints block rewards: v0's rewards still vesting at the fork are
    paid at once (it stays); bans count down in fork heights."""
    params = ChainParams(checkpoint_interval=EVERY, block_reward=60, reward_vesting_blocks=6)
    chain = make_chain(tmp_path / "node", 10, params=params)
    try:
        anchor = chain.anchors()[-1]  # height 10
        parent = LedgerApp(chain.genesis)
        for block in chain.store.blocks(1, 10):
            parent.commit(block)
        v0 = chain.validators[0].address
        owed = unvested_rewards(parent.ledger.state, v0, 10, params)
        assert owed > 0
        fork = fork_genesis(chain.store, chain.genesis, anchor, chain_id=FORK,
                            validators=_validators(_honest(chain)), time_ms=FORK_TIME)  # fmt: skip
        state = genesis_state(fork)
        paid = get_account(parent.ledger.state, v0).balance + owed
        assert get_account(state, v0).balance == paid
        assert unvested_rewards(state, v0, 10, params) == 0
        # bans: build a parent state with two bans and fork it at height 30 by hand
        base = parent.ledger.state.copy()
        base.begin_block()
        _ban(base, b"\x01" * 20, 50)
        _ban(base, b"\x02" * 20, 25)
        base.end_block()
        entries = tuple(StateEntry(k, v) for k, v in base.committed().items())
        tip = block_hash(chain.store.latest_block().header)
        handmade = dataclasses.replace(
            fork, fork_of=(ForkOrigin(CHAIN, 30, tip, base.root()),), state=entries
        )
        moved = genesis_state(handmade)
        assert get_ban(moved, b"\x01" * 20) == 20
        assert get_ban(moved, b"\x02" * 20) == 0  # over: lifted at the fork's first block
        app = LedgerApp(handmade)
        block = app.propose(1, FORK_TIME + 1, chain.validators[0].public_key)
        app.commit(block)
        banned = banned_accounts(app.ledger.state, 2)  # the old validators, and one more
        assert b"\x01" * 20 in banned and b"\x02" * 20 not in banned
    finally:
        chain.local.close()


def test_fork_validators_are_kept_by_name_or_added_with_their_key(chain: Chain) -> None:
    new = AccountKeys.generate().public_key
    chosen = fork_validators(chain.genesis, ["v0", "v2"], [f"n1={new.hex()}"])
    assert [(v.name, v.public_key) for v in chosen] == [
        ("v0", chain.keys[0]),
        ("v2", chain.keys[2]),
        ("n1", new),
    ]
    with pytest.raises(MedchainError, match="--keep v9: not a validator"):
        fork_validators(chain.genesis, ["v9"], [])
    with pytest.raises(MedchainError, match="expected NAME=NODEKEY"):
        fork_validators(chain.genesis, [], ["n1=abcd"])
    with pytest.raises(MedchainError, match="name the fork's validators"):
        fork_validators(chain.genesis, [], [])
    with pytest.raises(MedchainError, match="name is given twice"):
        fork_validators(chain.genesis, ["v0"], [f"v0={new.hex()}"])
    with pytest.raises(MedchainError, match="key is given twice"):
        fork_validators(chain.genesis, ["v0"], [f"n1={chain.keys[0].hex()}"])


def test_the_fork_anchor_is_the_highest_verified_or_the_one_asked_for(chain: Chain) -> None:
    anchors = chain.anchors()
    assert fork_anchor(chain.home, chain.genesis, anchors, None).height == 30
    assert fork_anchor(chain.home, chain.genesis, anchors, 20) == _anchor(chain, 20)
    with pytest.raises(ForkError, match="--height 35 is above 30"):
        fork_anchor(chain.home, chain.genesis, anchors, 35)
    with pytest.raises(ForkError, match="no final, valid anchor at height 12"):
        fork_anchor(chain.home, chain.genesis, anchors, 12)
    with pytest.raises(ForkError, match="no final, valid anchor of"):
        fork_anchor(chain.home, chain.genesis, chain.anchors(final=False), None)
    with pytest.raises(ForkError, match="has no chain store"):
        fork_anchor(chain.home / "elsewhere", chain.genesis, anchors, None)


def test_fork_home_names_the_fork_after_its_parent_and_height(chain: Chain) -> None:
    honest = _validators(_honest(chain))
    fork = fork_home(
        chain.home,
        chain.genesis,
        chain.anchors(),
        validators=honest,
        chain_id=None,
        height=20,
        time_ms=FORK_TIME,
    )
    assert fork.chain_id == f"{CHAIN}-fork-20" and fork.validators == honest
    assert fork.origin == _fork(chain, 20).origin
    with pytest.raises(MedchainError, match="pass a shorter --chain-id"):
        fork_home(
            chain.home,
            chain.genesis,
            chain.anchors(),
            validators=honest,
            chain_id="x" * 200,
            height=20,
            time_ms=FORK_TIME,
        )


def test_a_store_joined_from_a_snapshot_forks_only_once_backfilled(
    chain: Chain, tmp_path: Path
) -> None:
    joined = ChainStore(tmp_path / "joined.sqlite")
    base = chain.store.block_at(10)
    assert base is not None
    joined.initialise_from_snapshot(CHAIN, chain.store.genesis_hash, base, state=[])
    with joined, pytest.raises(ForkError, match="from height 10 only"):
        fork_genesis(
            joined,
            chain.genesis,
            _anchor(chain, 20),
            chain_id=FORK,
            validators=_validators(_honest(chain)),
            time_ms=FORK_TIME,
        )
