"""Evidence and penalties: a misbehaving primary and its voters are slashed, banned
for `ban_blocks`, and the primary forfeits its unvested rewards; bad evidence is
refused with a named error and changes nothing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from medchain.app import (
    AmountArgs,
    Ledger,
    NoArgs,
    Offence,
    OffenceKind,
    Role,
    TransferArgs,
    VoteArgs,
    accusation_quorum,
    get_account,
    get_ban,
    get_candidate,
    get_stake,
    is_banned,
    primary_candidates,
    punished_evidence_keys,
    punished_offences,
    unvested_rewards,
    validator_set,
    voters_of,
)
from medchain.crypto import AccountKeys, sha256
from medchain.types import (
    Accusation,
    Allocation,
    ChainParams,
    EquivocationEvidence,
    Genesis,
    GenesisValidator,
    InvalidProposalEvidence,
    Receipt,
    SignedProposal,
    accusation_signing_bytes,
    proposal_signing_bytes,
)

from .conftest import CHAIN_ID, World, make_org

FOUNDER = make_org("st-mary")
"""The founding organisation that credentials validators and doctors."""

EQUIVOCATE = "consensus.report_equivocation"
INVALID = "consensus.report_invalid_proposal"


@dataclass
class Net:
    world: World
    validators: list[AccountKeys]
    voter: AccountKeys
    """Votes 600 of 1000 bonded for v0 (the primary), has 100 more unbonding."""
    split: AccountKeys
    """Votes 250 for v0 and 250 for v1."""
    loyal: AccountKeys
    """Votes 300 for v2 only: not a voter of the primary."""

    @property
    def primary(self) -> AccountKeys:
        return self.validators[0]

    @property
    def reporter(self) -> AccountKeys:
        return self.validators[1]

    @property
    def params(self) -> ChainParams:
        return self.world.ledger.genesis.params


def _net(block_reward: int = 600) -> Net:
    validators = [AccountKeys.generate() for _ in range(4)]
    voter, split, loyal = (AccountKeys.generate() for _ in range(3))
    genesis = Genesis(
        CHAIN_ID,
        0,
        ChainParams(block_reward=block_reward, unbonding_blocks=50),
        tuple(Allocation(k.address, 10_000) for k in (voter, split, loyal)),
        tuple(
            GenesisValidator(k.public_key, f"v{i}", 1, FOUNDER.org_id)
            for i, k in enumerate(validators)
        ),
        organisations=(FOUNDER.genesis_entry(),),
    )
    world = World(Ledger(genesis), orgs=(FOUNDER,))
    v0, v1, v2 = (k.address for k in validators[:3])
    world.ok(voter, "staking.stake", AmountArgs(1_100))
    world.ok(voter, "staking.vote", VoteArgs(v0, 600))
    world.ok(voter, "staking.unstake", AmountArgs(100))
    world.ok(split, "staking.stake", AmountArgs(500))
    world.ok(split, "staking.vote", VoteArgs(v0, 250))
    world.ok(split, "staking.vote", VoteArgs(v1, 250))
    world.ok(loyal, "staking.stake", AmountArgs(300))
    world.ok(loyal, "staking.vote", VoteArgs(v2, 300))
    return Net(world, validators, voter, split, loyal)


def _proposal(
    keys: AccountKeys, height: int, block: bytes, round_: int = 0, chain_id: str = CHAIN_ID
) -> SignedProposal:
    digest = sha256(block)
    signature = keys.sign(proposal_signing_bytes(chain_id, height, round_, digest))
    return SignedProposal(height, round_, digest, keys.public_key, signature)


def _equivocation(keys: AccountKeys, height: int = 3, round_: int = 0) -> EquivocationEvidence:
    return EquivocationEvidence(
        _proposal(keys, height, b"block A", round_), _proposal(keys, height, b"block B", round_)
    )


def _accuse(keys: AccountKeys, proposal: SignedProposal) -> Accusation:
    message = accusation_signing_bytes(
        CHAIN_ID, proposal.height, proposal.round, proposal.block_hash
    )
    return Accusation(keys.public_key, keys.sign(message))


def _consensus_state(world: World) -> dict[bytes, bytes]:
    """Everything but account balances and nonces (a refused call still spends a nonce)."""
    return {k: v for k, v in world.ledger.state.committed().items() if not k.startswith(b"acct/")}


def _refused(world: World, keys: AccountKeys, method: str, evidence: object, code: str) -> Receipt:
    before = _consensus_state(world)
    receipt = world.call(keys, method, evidence)
    assert (receipt.ok, receipt.code) == (False, code), receipt.message
    assert receipt.message
    assert _consensus_state(world) == before
    return receipt


# -- the punishment ----------------------------------------------------------------


def test_equivocation_slashes_bans_and_forfeits() -> None:
    net = _net()
    world, primary = net.world, net.primary
    world.proposer = primary.address
    world.empty_blocks(3)  # the primary proposes and earns vesting rewards
    params = net.params
    unvested = unvested_rewards(world.ledger.state, primary.address, world.height, params)
    assert unvested == 400 + 500 + 600  # grants of the last 3 blocks, 2, 1 and 0 tranches paid
    supply_before = _supply(net)
    balance_before = get_account(world.ledger.state, primary.address).balance

    receipt = world.ok(net.reporter, EQUIVOCATE, _equivocation(primary))
    height = world.height
    assert unvested_rewards(world.ledger.state, primary.address, height, params) == 0
    # the reporting block paid one more tranche of each grant before the evidence ran
    # (and granted its own reward to the primary, which is forfeited with the rest)
    paid_meanwhile = get_account(world.ledger.state, primary.address).balance - balance_before
    assert paid_meanwhile == 300
    v0, v1, v2 = (k.address for k in net.validators[:3])

    voter = get_stake(world.ledger.state, net.voter.address)
    assert (voter.bonded, voter.voted, voter.free) == (900, 540, 360)
    assert [u.amount for u in voter.unbonding] == [90]
    split = get_stake(world.ledger.state, net.split.address)
    assert (split.bonded, [v.amount for v in split.votes]) == (450, [225, 225])
    assert get_stake(world.ledger.state, net.loyal.address).bonded == 300  # not a voter of v0

    def votes(address: bytes) -> int:
        candidate = get_candidate(world.ledger.state, address)
        assert candidate is not None
        return candidate.votes

    assert (votes(v0), votes(v1), votes(v2)) == (540 + 225, 225, 300)

    punished = sorted({primary.address, net.voter.address, net.split.address})
    for address in punished:
        assert get_ban(world.ledger.state, address) == height + 20
    assert get_ban(world.ledger.state, net.loyal.address) == 0

    (offence,) = punished_offences(world.ledger.state)
    assert offence == Offence(
        OffenceKind.EQUIVOCATION,
        primary.address,
        3,
        0,
        offence.evidence_hash,
        net.reporter.address,
        height,
        height + 20,
        tuple(punished),
        100 + 10 + 50,  # voter: 60 + 40 bonded, 10 unbonding; split: 25 + 25
        unvested - paid_meanwhile + params.block_reward,
    )
    # slashed stake is burned: balances plus stakes drop by exactly the slashed amount
    assert _supply(net) == supply_before + paid_meanwhile - offence.slashed

    kinds = [e.kind for e in receipt.events]
    assert kinds.count("slashed") == 3 and kinds.count("banned") == 3
    assert kinds[-2:] == ["rewards_forfeited", "offence_punished"]
    assert receipt.events[-1].get("offence") == "equivocation"
    # nothing of the forfeited grants is ever paid
    world.proposer = b"\x07" * 20
    world.empty_blocks(8)
    assert get_account(world.ledger.state, primary.address).balance == balance_before + 300


def _supply(net: Net) -> int:
    state = net.world.ledger.state
    people = [*net.validators, net.voter, net.split, net.loyal]
    total = 0
    for keys in people:
        stake = get_stake(state, keys.address)
        total += get_account(state, keys.address).balance
        total += stake.bonded + sum(u.amount for u in stake.unbonding)
    return total


def test_ban_excludes_from_elections_for_ban_blocks_then_lifts() -> None:
    net = _net(block_reward=0)
    world, params = net.world, net.params
    v0, v1, v2 = net.validators[:3]

    def queue() -> tuple[bytes, ...]:
        return primary_candidates(world.ledger.state, world.height + 1, params)

    assert queue() == (v0.public_key, v2.public_key, v1.public_key)  # 850, 300, 250
    world.ok(net.reporter, EQUIVOCATE, _equivocation(v0))
    punished_at = world.height
    # v0 is banned; v1's only voter (split) is banned too, so v1 has no votes that count
    assert queue() == (v2.public_key,)
    assert is_banned(world.ledger.state, net.split.address, punished_at + 20)
    world.empty_blocks(19)
    assert world.height + 1 == punished_at + 20
    assert queue() == (v2.public_key,)  # still banned at the 20th block after
    world.empty_blocks(1)
    assert queue() == (v0.public_key, v2.public_key, v1.public_key)  # 765, 300, 225
    world.empty_blocks(1)  # the ban is lifted (and its record removed) as block starts
    assert get_ban(world.ledger.state, v0.address) == 0


def test_a_new_offence_extends_a_ban() -> None:
    net = _net(block_reward=0)
    world = net.world
    world.ok(net.reporter, EQUIVOCATE, _equivocation(net.primary, height=2))
    first = get_ban(world.ledger.state, net.primary.address)
    world.empty_blocks(5)
    world.ok(net.reporter, EQUIVOCATE, _equivocation(net.primary, height=3))
    assert get_ban(world.ledger.state, net.primary.address) == first + 6
    assert len(punished_evidence_keys(world.ledger.state)) == 2
    assert get_stake(world.ledger.state, net.voter.address).bonded == 1_000 * 81 // 100


def test_invalid_proposal_with_a_quorum_of_accusations_is_punished() -> None:
    net = _net(block_reward=0)
    world = net.world
    proposal = _proposal(net.primary, 4, b"bad block")
    accusations = tuple(_accuse(k, proposal) for k in net.validators[1:])
    assert accusation_quorum(len(net.validators)) == 3
    receipt = world.ok(net.reporter, INVALID, InvalidProposalEvidence(proposal, accusations))
    assert receipt.events[-1].get("offence") == "invalid_proposal"
    assert get_ban(world.ledger.state, net.primary.address) == world.height + 20
    # the same offence, now with the accusations in another order: the same evidence
    reordered = InvalidProposalEvidence(proposal, accusations[::-1])
    _refused(world, net.reporter, INVALID, reordered, "duplicate_evidence")
    # equivocation at the same height and round is the same offence, already punished
    other = _proposal(net.primary, 4, b"another block")
    _refused(
        world,
        net.reporter,
        EQUIVOCATE,
        EquivocationEvidence(proposal, other),
        "already_punished",
    )


def test_voters_are_indexed_and_unindexed() -> None:
    net = _net(block_reward=0)
    world = net.world
    v0, v1 = net.validators[0].address, net.validators[1].address
    assert voters_of(world.ledger.state, v0) == tuple(
        sorted((net.voter.address, net.split.address))
    )
    world.ok(net.split, "staking.unvote", VoteArgs(v1, 100))
    assert voters_of(world.ledger.state, v1) == (net.split.address,)
    world.ok(net.split, "staking.unvote", VoteArgs(v1, 150))
    assert voters_of(world.ledger.state, v1) == ()


def test_genesis_stores_the_validator_set_in_order() -> None:
    net = _net()
    assert validator_set(net.world.ledger.state) == tuple(k.public_key for k in net.validators)


@pytest.mark.parametrize(("n", "quorum"), [(1, 1), (3, 1), (4, 3), (7, 5), (10, 7), (19, 13)])
def test_accusation_quorum_is_2f_plus_1(n: int, quorum: int) -> None:
    assert accusation_quorum(n) == quorum


# -- refused evidence --------------------------------------------------------------


@pytest.fixture
def net() -> Net:
    return _net(block_reward=0)


def test_duplicate_evidence_is_refused(net: Net) -> None:
    evidence = _equivocation(net.primary)
    net.world.ok(net.reporter, EQUIVOCATE, evidence)
    _refused(net.world, net.reporter, EQUIVOCATE, evidence, "duplicate_evidence")
    swapped = EquivocationEvidence(evidence.second, evidence.first)
    _refused(net.world, net.validators[2], EQUIVOCATE, swapped, "duplicate_evidence")
    third = EquivocationEvidence(evidence.first, _proposal(net.primary, 3, b"block C"))
    _refused(net.world, net.reporter, EQUIVOCATE, third, "already_punished")
    assert len(punished_offences(net.world.ledger.state)) == 1


def test_forged_evidence_is_refused(net: Net) -> None:
    good = _equivocation(net.primary)
    forged_sig = dataclasses.replace(good.second, signature=bytes(64))
    _refused(
        net.world,
        net.reporter,
        EQUIVOCATE,
        EquivocationEvidence(good.first, forged_sig),
        "forged_evidence",
    )
    # a proposal signed for another chain does not verify here
    elsewhere = _proposal(net.primary, 3, b"block B", chain_id="other-chain")
    _refused(
        net.world,
        net.reporter,
        EQUIVOCATE,
        EquivocationEvidence(good.first, elsewhere),
        "forged_evidence",
    )
    # someone else's signature over the primary's key
    mallory = AccountKeys.generate()
    framed = dataclasses.replace(_proposal(mallory, 3, b"block B"), proposer=net.primary.public_key)
    _refused(
        net.world,
        net.reporter,
        EQUIVOCATE,
        EquivocationEvidence(good.first, framed),
        "forged_evidence",
    )


def test_non_conflicting_evidence_is_refused(net: Net) -> None:
    primary = net.primary
    same = _proposal(primary, 3, b"block A")
    cases = [
        EquivocationEvidence(same, same),
        EquivocationEvidence(_proposal(primary, 3, b"A"), _proposal(primary, 4, b"B")),
        EquivocationEvidence(_proposal(primary, 3, b"A", 0), _proposal(primary, 3, b"B", 1)),
        EquivocationEvidence(_proposal(primary, 3, b"A"), _proposal(net.reporter, 3, b"B")),
        _equivocation(primary, height=10_000),  # from the future
        _equivocation(primary, height=0),
    ]
    for evidence in cases:
        _refused(net.world, net.reporter, EQUIVOCATE, evidence, "invalid_evidence")


def test_evidence_against_a_non_validator_is_refused(net: Net) -> None:
    _refused(
        net.world,
        net.reporter,
        EQUIVOCATE,
        _equivocation(AccountKeys.generate()),
        "invalid_evidence",
    )


def test_only_validators_report(net: Net) -> None:
    _refused(net.world, net.voter, EQUIVOCATE, _equivocation(net.primary), "not_registered")
    doctor = AccountKeys.generate()
    net.world.ok(net.voter, "accounts.transfer", TransferArgs(doctor.address, 1))
    net.world.register(doctor, Role.DOCTOR, "Dr. Who")
    _refused(net.world, doctor, EQUIVOCATE, _equivocation(net.primary), "wrong_role")


def test_a_registered_validator_outside_the_genesis_set_may_report(net: Net) -> None:
    newcomer = AccountKeys.generate()
    net.world.register(newcomer, Role.VALIDATOR, "new node")
    net.world.ok(newcomer, "staking.declare_candidate", NoArgs())
    net.world.ok(newcomer, EQUIVOCATE, _equivocation(net.primary))


def test_invalid_proposal_needs_2f_plus_1_accusations(net: Net) -> None:
    proposal = _proposal(net.primary, 4, b"bad block")
    two = tuple(_accuse(k, proposal) for k in net.validators[1:3])
    _refused(
        net.world,
        net.reporter,
        INVALID,
        InvalidProposalEvidence(proposal, two),
        "not_enough_accusations",
    )
    repeated = (*two, two[0])
    _refused(
        net.world,
        net.reporter,
        INVALID,
        InvalidProposalEvidence(proposal, repeated),
        "invalid_evidence",
    )
    outsider = _accuse(AccountKeys.generate(), proposal)
    _refused(
        net.world,
        net.reporter,
        INVALID,
        InvalidProposalEvidence(proposal, (*two, outsider)),
        "invalid_evidence",
    )
    forged = Accusation(net.validators[3].public_key, bytes(64))
    _refused(
        net.world,
        net.reporter,
        INVALID,
        InvalidProposalEvidence(proposal, (*two, forged)),
        "forged_evidence",
    )
    # accusations of another block do not count for this one
    other = _proposal(net.primary, 4, b"other block")
    wrong = _accuse(net.validators[3], other)
    _refused(
        net.world,
        net.reporter,
        INVALID,
        InvalidProposalEvidence(proposal, (*two, wrong)),
        "forged_evidence",
    )
    unsigned = dataclasses.replace(proposal, signature=bytes(64))
    full = (*two, _accuse(net.validators[3], proposal))
    _refused(
        net.world, net.reporter, INVALID, InvalidProposalEvidence(unsigned, full), "forged_evidence"
    )
    assert punished_offences(net.world.ledger.state) == []
