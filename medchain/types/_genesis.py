"""Genesis: the chain's id, parameters, initial balances and validators, and — for a
chain that forks another (paper 003's hard fork) — where it forks from and the state
it carries over."""

from __future__ import annotations

from dataclasses import dataclass, field

from medchain.types._errors import MedchainError


class GenesisError(MedchainError):
    """A genesis document that cannot start a chain."""

    code = "bad_genesis"


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Consensus-critical parameters; changing one is a hard fork."""

    consensus: str = "pbft"
    """The engine every validator runs: `pbft`, `afbft` or `dpos`."""
    min_fee: int = 0
    max_tx_bytes: int = 65_536
    max_block_txs: int = 5_000
    max_readers: int = 64
    """Most readers one record version may be wrapped for."""
    unbonding_blocks: int = 100
    """Blocks between unstake and the tokens becoming spendable again."""
    max_votes_per_voter: int = 30
    max_ring_size: int = 64
    """Largest ring an anonymous transaction may use (verification is linear in it)."""
    block_reward: int = 0
    """Tokens minted for the proposer of every block; 0 mints nothing and writes nothing."""
    reward_vesting_blocks: int = 6
    """A block reward vests in equal parts over this many following blocks (paper 000)."""
    slash_bps: int = 1_000
    """Basis points of stake burned from a punished primary and each of its voters."""
    ban_blocks: int = 20
    """Blocks a punished primary and its voters are banned from elections."""
    primary_candidates: int = 7
    """AFBFT: size of the elected primary-candidate queue."""
    committee_size: int = 4
    """DPoS: producers elected per epoch (K)."""
    epoch_blocks: int = 20
    """DPoS: blocks per epoch; the committee is elected from the state at its first height."""
    checkpoint_interval: int = 5
    """Validators sign a checkpoint (block hash, state root) every this many heights;
    each checkpoint a quorum signs is anchored on the verification chain."""
    device_strikes_restrict: int = 3
    """Devices: strikes (gateway reports) after which a device is restricted."""
    device_strikes_ban: int = 6
    """Devices: strikes after which a device is banned (a strike while restricted bans
    it sooner)."""
    device_restrict_blocks: int = 100
    """Devices: blocks a penalty restriction lasts; it lapses by itself afterwards."""
    max_block_anonymous_txs: int = 16
    """Most anonymous transactions one block may hold: they pay no fee and each costs
    a ring verification (up to `max_ring_size` members), so this bounds the work a
    block asks of every validator. Further ones wait for the next blocks."""
    proposal_blocks: int = 10_000
    """Organisations: blocks an open membership proposal waits for its approvals
    before it lapses."""
    emergency_window_ms: int = 4 * 3_600_000
    """Break-glass: block time (ms) an emergency request accepts the organisations'
    answers after it opens."""
    recovery_min_delay_ms: int = 24 * 3_600_000
    """Key recovery: the shortest waiting period (block time, ms) a patient may choose
    between their guardians' approvals and the recovery, during which the old key can
    cancel it. A devnet or test chain may set it low."""


@dataclass(frozen=True, slots=True)
class Allocation:
    address: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    public_key: bytes
    """Ed25519 public key."""
    name: str
    power: int = 1
    organisation: str = ""
    """The `org_id` of the genesis organisation that runs this validator ("" on a
    chain without organisations)."""


@dataclass(frozen=True, slots=True)
class GenesisOrganisation:
    """A founding organisation of the consortium."""

    org_id: str
    """A slug: lower-case letters, digits and hyphens, 2 to 32 characters."""
    name: str
    kind: str
    """An `OrgKind` value (hospital, clinic, research, ...)."""
    admins: tuple[bytes, ...]
    """Ed25519 public keys of the people who act for it (1 to 16)."""
    public_key: bytes
    """Ed25519 key of the organisation's own account."""
    encryption_key: bytes
    """X25519 key of the organisation's account."""


@dataclass(frozen=True, slots=True)
class ForkOrigin:
    """The anchored checkpoint of the parent chain a fork continues from."""

    chain_id: str
    """The parent chain's id."""
    height: int
    block_hash: bytes
    state_root: bytes
    """The parent's state root at `height`: the fork's `state` must hash to it."""


@dataclass(frozen=True, slots=True)
class StateEntry:
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    time_ms: int
    params: ChainParams = field(default_factory=ChainParams)
    allocations: tuple[Allocation, ...] = ()
    validators: tuple[GenesisValidator, ...] = ()
    fork_of: tuple[ForkOrigin, ...] = ()
    """Empty for a new chain; one origin for a hard fork (the codec has no optional
    fields, so a 0-or-1 tuple stands in for one)."""
    state: tuple[StateEntry, ...] = ()
    """A fork's starting state, in ascending key order: the parent's whole state at
    the origin height. Empty for a new chain."""
    organisations: tuple[GenesisOrganisation, ...] = ()
    """The founding organisations (a fork carries its parent's in `state` instead)."""

    @property
    def origin(self) -> ForkOrigin | None:
        """The checkpoint this chain forks from, or None for a new chain."""
        return self.fork_of[0] if self.fork_of else None
