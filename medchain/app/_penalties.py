"""Penalties (paper 000): evidence of a misbehaving primary, checked on chain.

Any registered validator may report one of two offences:

- **equivocation** (`consensus.report_equivocation`): two proposals for the same
  height and round, different blocks, both signed by the same primary;
- **invalid proposal** (`consensus.report_invalid_proposal`): a proposal signed by
  the primary and accusations of it signed by at least 2f+1 distinct validators of
  the validator set (n validators, f = (n-1) // 3).

The contract verifies every signature itself. The **validator set** is the
genesis validators, in genesis order; genesis stores it in the state
(`validator_set`) so contracts can read it.

The punishment for an offence by primary P, reported in block H:

- P and every account with votes allocated to P lose `slash_bps` of their stake
  (`_staking.slash`: free bonded stake, every vote allocation — the candidates'
  totals drop with it — and stake still unbonding). Slashed tokens are burned;
- they are **banned** until height H + `ban_blocks`: `get_ban` returns that height
  and `is_banned(state, a, h)` is true for every h up to and including it. While
  banned, an account is left out of every election (AFBFT's primary candidates,
  the DPoS committee elected at an epoch start) and the votes it allocated count
  for nobody. A ban changes nothing else: the account may still transact, and the
  PBFT voting set (the genesis validators) is fixed;
- P forfeits its unvested block rewards.

One offence is one (primary, height, round): it is punished once, whichever
evidence proves it. The same evidence again is `DuplicateEvidence`, other
evidence of a punished offence is `AlreadyPunished`. Punished offences are kept
(`punished_offences`) with what they cost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from medchain.app._context import Call, Methods, make_event
from medchain.app._errors import (
    AlreadyPunished,
    DuplicateEvidence,
    ForgedEvidence,
    InvalidEvidence,
    NotEnoughAccusations,
)
from medchain.app._registry import Role, get_identity, require_identity
from medchain.app._rewards import forfeit_rewards
from medchain.app._staking import slash, voters_of
from medchain.app._state import State, load, save
from medchain.crypto import (
    PUBLIC_KEY_SIZE,
    address_from_public_key,
    format_address,
    tagged_hash,
    verify_signature,
)
from medchain.types import (
    HASH_SIZE,
    EquivocationEvidence,
    Event,
    InvalidProposalEvidence,
    SignedProposal,
    accusation_signing_bytes,
    encode,
    proposal_signing_bytes,
)

# -- the validator set ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    keys: tuple[bytes, ...]
    """Ed25519 public keys, in genesis order."""


_VALIDATORS_KEY = b"consensus/validators"


def put_validator_set(state: State, keys: tuple[bytes, ...]) -> None:
    save(state, _VALIDATORS_KEY, ValidatorSet(keys))


def validator_set(state: State) -> tuple[bytes, ...]:
    """The validators' public keys in genesis order (the PBFT voting set)."""
    found = load(state, _VALIDATORS_KEY, ValidatorSet)
    return () if found is None else found.keys


def accusation_quorum(validators: int) -> int:
    """2f+1 with f = (n-1) // 3: accusers needed to prove a proposal invalid."""
    return 2 * ((validators - 1) // 3) + 1 if validators > 0 else 1


# -- bans -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ban:
    until: int
    """Last height at which the account is banned."""


@dataclass(frozen=True, slots=True)
class BanIndex:
    addresses: tuple[bytes, ...]
    """Sorted addresses with a ban that has not expired yet."""


_BAN_INDEX_KEY = b"bans"


def _ban_key(address: bytes) -> bytes:
    return b"ban/" + address


def get_ban(state: State, address: bytes) -> int:
    """The last height `address` is banned at; 0 if it is not banned."""
    ban = load(state, _ban_key(address), Ban)
    return 0 if ban is None else ban.until


def is_banned(state: State, address: bytes, height: int) -> bool:
    return height <= get_ban(state, address)


def banned_accounts(state: State, height: int) -> tuple[bytes, ...]:
    """Addresses banned at `height`, sorted."""
    index = load(state, _BAN_INDEX_KEY, BanIndex)
    if index is None:
        return ()
    return tuple(a for a in index.addresses if is_banned(state, a, height))


def _ban(state: State, address: bytes, until: int) -> int:
    until = max(until, get_ban(state, address))
    save(state, _ban_key(address), Ban(until))
    index = load(state, _BAN_INDEX_KEY, BanIndex) or BanIndex(())
    if address not in index.addresses:
        save(state, _BAN_INDEX_KEY, BanIndex(tuple(sorted((*index.addresses, address)))))
    return until


def expire_bans(state: State, height: int) -> list[Event]:
    """At the start of block `height`, lift the bans that ended before it."""
    index = load(state, _BAN_INDEX_KEY, BanIndex)
    if index is None:
        return []
    ended = [a for a in index.addresses if not is_banned(state, a, height)]
    if not ended:
        return []
    for address in ended:
        state.delete(_ban_key(address))
    remaining = tuple(a for a in index.addresses if a not in ended)
    if remaining:
        save(state, _BAN_INDEX_KEY, BanIndex(remaining))
    else:
        state.delete(_BAN_INDEX_KEY)
    return [make_event("ban_lifted", address=a) for a in ended]


# -- offences ---------------------------------------------------------------------


class OffenceKind(enum.StrEnum):
    EQUIVOCATION = "equivocation"
    INVALID_PROPOSAL = "invalid_proposal"


@dataclass(frozen=True, slots=True)
class Offence:
    """A punished offence and what it cost."""

    kind: OffenceKind
    primary: bytes
    """Address of the punished primary."""
    height: int
    round: int
    evidence_hash: bytes
    reporter: bytes
    punished_height: int
    banned_until: int
    punished: tuple[bytes, ...]
    """Sorted addresses slashed and banned: the primary and its voters."""
    slashed: int
    """Tokens burned from all of them together."""
    forfeited: int
    """Unvested rewards of the primary that were cancelled."""


@dataclass(frozen=True, slots=True)
class OffenceIndex:
    keys: tuple[bytes, ...]
    """Sorted `offence_key`s of every punished offence."""


_OFFENCE_INDEX_KEY = b"offences"


def offence_key(primary: bytes, height: int, round_: int) -> bytes:
    """The state key of the offence of `primary` (an address) at (height, round)."""
    return b"offence/" + primary + height.to_bytes(8, "big") + round_.to_bytes(4, "big")


def get_offence(state: State, key: bytes) -> Offence | None:
    return load(state, key, Offence)


def punished_evidence_keys(state: State) -> tuple[bytes, ...]:
    """Keys of every punished offence, sorted."""
    index = load(state, _OFFENCE_INDEX_KEY, OffenceIndex)
    return () if index is None else index.keys


def punished_offences(state: State) -> list[Offence]:
    """Every punished offence, in key order (by primary, then height and round)."""
    found = []
    for key in punished_evidence_keys(state):
        offence = get_offence(state, key)
        assert offence is not None, "the offence index names a missing offence"
        found.append(offence)
    return found


def equivocation_hash(evidence: EquivocationEvidence) -> bytes:
    """Identity of the evidence, whichever order its two proposals come in."""
    first, second = sorted(
        (evidence.first, evidence.second), key=lambda p: (p.block_hash, p.signature)
    )
    return tagged_hash(
        "medchain/evidence/equivocation", encode(EquivocationEvidence(first, second))
    )


def invalid_proposal_hash(evidence: InvalidProposalEvidence) -> bytes:
    """Identity of the evidence, whichever order its accusations come in."""
    accusations = tuple(sorted(evidence.accusations, key=lambda a: (a.validator, a.signature)))
    return tagged_hash(
        "medchain/evidence/invalid-proposal",
        encode(InvalidProposalEvidence(evidence.proposal, accusations)),
    )


# -- checks -----------------------------------------------------------------------


def _check_proposal(call: Call, proposal: SignedProposal, what: str) -> None:
    if len(proposal.proposer) != PUBLIC_KEY_SIZE:
        raise InvalidEvidence(f"the {what}'s proposer must be a 32-byte Ed25519 public key")
    if len(proposal.block_hash) != HASH_SIZE:
        raise InvalidEvidence(f"the {what}'s block hash must be {HASH_SIZE} bytes")
    if not 1 <= proposal.height <= call.block.height:
        raise InvalidEvidence(
            f"the {what} is for height {proposal.height}; evidence must concern a height "
            f"from 1 to the current {call.block.height}"
        )
    message = proposal_signing_bytes(
        call.block.chain_id, proposal.height, proposal.round, proposal.block_hash
    )
    if not verify_signature(proposal.proposer, message, proposal.signature):
        raise ForgedEvidence(
            f"the {what}'s signature does not verify against its proposer's key "
            f"for chain {call.block.chain_id!r}; report the proposal exactly as received"
        )


def _require_primary(state: State, proposer: bytes) -> bytes:
    address = address_from_public_key(proposer)
    identity = get_identity(state, address)
    if identity is None or identity.role is not Role.VALIDATOR:
        raise InvalidEvidence(
            f"{format_address(address)} is not a registered validator; "
            "only validators can be primaries and be punished"
        )
    return address


def _require_new(state: State, key: bytes, evidence_hash: bytes) -> None:
    offence = get_offence(state, key)
    if offence is None:
        return
    if offence.evidence_hash == evidence_hash:
        raise DuplicateEvidence(
            f"this evidence was already punished at height {offence.punished_height}"
        )
    raise AlreadyPunished(
        f"{format_address(offence.primary)} was already punished for height {offence.height} "
        f"round {offence.round} (at height {offence.punished_height}); "
        "an offence is punished once"
    )


# -- the methods ------------------------------------------------------------------


def report_equivocation(state: State, call: Call, args: EquivocationEvidence) -> None:
    require_identity(state, call.sender, Role.VALIDATOR)
    first, second = args.first, args.second
    if first.proposer != second.proposer:
        raise InvalidEvidence("the two proposals are signed by different validators")
    if (first.height, first.round) != (second.height, second.round):
        raise InvalidEvidence(
            f"the proposals are for (height {first.height}, round {first.round}) and "
            f"(height {second.height}, round {second.round}); equivocation needs one "
            "height and round"
        )
    if first.block_hash == second.block_hash:
        raise InvalidEvidence("both proposals are for the same block: they do not conflict")
    _check_proposal(call, first, "first proposal")
    _check_proposal(call, second, "second proposal")
    primary = _require_primary(state, first.proposer)
    key = offence_key(primary, first.height, first.round)
    evidence_hash = equivocation_hash(args)
    _require_new(state, key, evidence_hash)
    _punish(state, call, OffenceKind.EQUIVOCATION, primary, first, evidence_hash)


def report_invalid_proposal(state: State, call: Call, args: InvalidProposalEvidence) -> None:
    require_identity(state, call.sender, Role.VALIDATOR)
    proposal = args.proposal
    _check_proposal(call, proposal, "proposal")
    primary = _require_primary(state, proposal.proposer)
    validators = validator_set(state)
    members = set(validators)
    accusers: set[bytes] = set()
    for accusation in args.accusations:
        if accusation.validator not in members:
            raise InvalidEvidence(
                f"an accusation is signed by {accusation.validator.hex()}, "
                "which is not in the validator set"
            )
        if accusation.validator in accusers:
            raise InvalidEvidence(
                f"validator {accusation.validator.hex()} accuses the proposal twice"
            )
        accusers.add(accusation.validator)
    quorum = accusation_quorum(len(validators))
    if len(accusers) < quorum:
        raise NotEnoughAccusations(
            f"{len(accusers)} validators accuse the proposal; {quorum} of the "
            f"{len(validators)} (2f+1) are needed"
        )
    message = accusation_signing_bytes(
        call.block.chain_id, proposal.height, proposal.round, proposal.block_hash
    )
    for accusation in args.accusations:
        if not verify_signature(accusation.validator, message, accusation.signature):
            raise ForgedEvidence(
                f"the accusation by {accusation.validator.hex()} does not verify; "
                "report accusations exactly as received"
            )
    key = offence_key(primary, proposal.height, proposal.round)
    evidence_hash = invalid_proposal_hash(args)
    _require_new(state, key, evidence_hash)
    _punish(state, call, OffenceKind.INVALID_PROPOSAL, primary, proposal, evidence_hash)


def _punish(
    state: State,
    call: Call,
    kind: OffenceKind,
    primary: bytes,
    proposal: SignedProposal,
    evidence_hash: bytes,
) -> None:
    params = call.block.params
    until = call.block.height + params.ban_blocks
    punished = tuple(sorted({primary, *voters_of(state, primary)}))
    slashed = 0
    for address in punished:
        burned = slash(state, address, params.slash_bps)
        slashed += burned.total
        banned_until = _ban(state, address, until)
        call.emit(
            "slashed",
            address=address,
            primary=primary,
            amount=burned.total,
            bonded=burned.bonded,
            unbonding=burned.unbonding,
        )
        call.emit("banned", address=address, until=banned_until)
    forfeited = forfeit_rewards(state, primary, call.block.height, params)
    if forfeited:
        call.emit("rewards_forfeited", address=primary, amount=forfeited)
    key = offence_key(primary, proposal.height, proposal.round)
    save(
        state,
        key,
        Offence(
            kind,
            primary,
            proposal.height,
            proposal.round,
            evidence_hash,
            call.sender,
            call.block.height,
            until,
            punished,
            slashed,
            forfeited,
        ),
    )
    index = punished_evidence_keys(state)
    save(state, _OFFENCE_INDEX_KEY, OffenceIndex(tuple(sorted((*index, key)))))
    call.emit(
        "offence_punished",
        offence=kind.value,
        primary=primary,
        height=proposal.height,
        round=proposal.round,
        evidence=evidence_hash,
        reporter=call.sender,
        banned_until=until,
        slashed=slashed,
        forfeited=forfeited,
    )


METHODS: Methods = {
    "consensus.report_equivocation": (EquivocationEvidence, report_equivocation),
    "consensus.report_invalid_proposal": (InvalidProposalEvidence, report_invalid_proposal),
}
