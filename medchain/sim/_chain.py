"""The real chain in the simulator: each node runs a `BftEngine` over its own
in-memory `LedgerApp`, with keys derived from the seed, evidence turned into
on-chain transactions, Byzantine behaviours that understand the messages
(equivocation, Twins) and the predictive attack of paper 000.

This module sits above the engines and the node wiring; the simulator core
(`_simulator`, `_network`, `_faults`) knows none of them.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from medchain.app import AmountArgs, VoteArgs
from medchain.consensus import (
    BftEngine,
    Broadcast,
    EngineConfig,
    EngineKind,
    Event,
    Kind,
    Ordering,
    Proposal,
    Send,
    afbft_alpha,
    engine_kind,
    sign,
    unwire,
    verified_vrf_output,
    wire,
)
from medchain.crypto import AccountKeys, address_from_public_key, signed_tx
from medchain.node import LedgerApp
from medchain.sim._byzantine import forge, replay, rewrite, silent
from medchain.sim._faults import (
    BEGIN,
    AdversaryControl,
    FaultSchedule,
    MessageSent,
    Observation,
    OfflineMode,
    OfflineTargeting,
    Position,
    Wakeup,
)
from medchain.sim._metrics import EvidenceReport, SimResult
from medchain.sim._network import LinkConfig, NetworkConfig, Partition
from medchain.sim._node import Behaviour, NodeSpec, SimAction
from medchain.sim._simulator import SimConfig, Simulator
from medchain.types import (
    Allocation,
    ChainParams,
    Genesis,
    GenesisValidator,
    MedchainError,
    Tx,
)

CHAIN_ID = "medchain-sim"


class Byzantine(enum.StrEnum):
    EQUIVOCATE = "equivocate"
    """As primary, sends one block to half the validators and another to the rest."""
    SILENT = "silent"
    FORGE = "forge"
    """Also sends garbage and bit-flipped copies of real messages."""
    REPLAY = "replay"
    """Also re-sends everything it ever received."""
    TWIN = "twin"
    """Two nodes run with one key (each honest on its own): the Twins test."""


@dataclass(frozen=True)
class Attack:
    """Paper 000's predictive attack: keep the `k` nodes the attacker expects to be
    primary next offline from `from_ms` to `to_ms`. Round-robin schedules (PBFT,
    DPoS) are known in advance; AFBFT's primary is known only once its VRF proof is
    out, and the attacker needs `reaction_ms` to act on what it sees."""

    k: int
    from_ms: int
    to_ms: int
    reaction_ms: int = 1_000


@dataclass(frozen=True)
class Scenario:
    engine: EngineKind = EngineKind.PBFT
    nodes: int = 4
    blocks: int = 100
    """Stop once every honest node has committed this many blocks…"""
    max_ms: int = 0
    """…or at this simulated time (0: a generous bound from the timeouts)."""
    seed: int = 1
    latency_ms: int = 50
    jitter_ms: int = 10
    loss_ppm: int = 0
    bytes_per_s: int | None = None
    cpu_us_per_message: int = 0
    """Processing per received message, queued first come first served (0: none, as in
    the docs' experiments); on this machine an Ed25519 check is ~40 µs, plus decoding
    and bookkeeping (see docs/CONSENSUS.md)."""
    block_interval_ms: int = 1_000
    round_timeout_ms: int = 2_000
    max_round_timeout_ms: int = 32_000
    proposal_window_ms: int = 200
    byzantine: tuple[tuple[Byzantine, int], ...] = ()
    attack: Attack | None = None
    partitions: tuple[Partition, ...] = ()
    faults: FaultSchedule | None = None
    primary_candidates: int = 7
    committee_size: int = 4
    block_reward: int = 6_000
    stake: int = 100_000
    """Each validator bonds this much and votes it for itself in the first blocks
    (paper 000's opening vote), so elections and slashing have stake to work on."""
    run_to_end: bool = False
    """Ignore `blocks` and run until `max_ms` (for experiments over a time window)."""


def sim_keys(seed: int, index: int) -> AccountKeys:
    """Validator keys derived from the seed, so a seed fixes the whole run."""
    base = hashlib.sha256(b"medchain-sim/keys" + seed.to_bytes(8, "big") + index.to_bytes(4, "big"))
    signing = base.digest()
    encryption = hashlib.sha256(signing + b"/encryption").digest()
    return AccountKeys(signing, encryption)


def scenario_genesis(scenario: Scenario, keys: Sequence[AccountKeys]) -> Genesis:
    params = ChainParams(
        consensus=scenario.engine.value,
        block_reward=scenario.block_reward,
        primary_candidates=scenario.primary_candidates,
        committee_size=scenario.committee_size,
    )
    return Genesis(
        CHAIN_ID,
        0,
        params,
        tuple(Allocation(k.address, 1_000_000) for k in keys),
        tuple(GenesisValidator(k.public_key, f"node-{i}") for i, k in enumerate(keys)),
    )


@dataclass
class ChainRun:
    """One scenario's simulator plus the per-node apps, for tests to inspect."""

    scenario: Scenario
    simulator: Simulator
    apps: list[LedgerApp]
    keys: list[AccountKeys]
    """Per simulated node (twins share an entry's value)."""
    attacker: OfflineTargeting | VrfHunter | None = None
    evidence: list[EvidenceReport] = field(default_factory=list)

    def run(self) -> SimResult:
        scenario = self.scenario
        until = scenario.max_ms or _default_bound(scenario)
        stop: Callable[[Simulator], bool] | None = None
        if not scenario.run_to_end:
            target = scenario.blocks

            honest = [i for i, node in enumerate(self.simulator.nodes) if node.honest]

            def stop(sim: Simulator) -> bool:
                return min(self.apps[i].height for i in honest) >= target

        return self.simulator.run(until_ms=until, stop_when=stop)


def _default_bound(scenario: Scenario) -> int:
    per_block = scenario.block_interval_ms + 4 * scenario.round_timeout_ms
    return scenario.blocks * per_block + 60_000


def build(scenario: Scenario) -> ChainRun:
    """Wire a scenario: validators, their Byzantine behaviours, network, attack."""
    keys = [sim_keys(scenario.seed, i) for i in range(scenario.nodes)]
    genesis = scenario_genesis(scenario, keys)
    specs: list[NodeSpec] = []
    node_keys: list[AccountKeys] = []
    behaviours = _assign_behaviours(scenario)
    for i, key in enumerate(keys):
        kind = behaviours.get(i)
        behaviour = _behaviour(kind, i, key, keys, scenario) if kind else None
        specs.append(NodeSpec(f"node-{i}", key.public_key, behaviour, byzantine=kind is not None))
        node_keys.append(key)
        if kind is Byzantine.TWIN:
            specs.append(NodeSpec(f"node-{i}-twin", key.public_key, None, byzantine=True))
            node_keys.append(key)
    config = EngineConfig(
        CHAIN_ID,
        engine_kind(genesis.params.consensus),
        block_interval_ms=scenario.block_interval_ms,
        round_timeout_ms=scenario.round_timeout_ms,
        max_round_timeout_ms=scenario.max_round_timeout_ms,
        proposal_window_ms=scenario.proposal_window_ms,
    )
    apps = [LedgerApp(genesis) for _ in specs]

    def factory(index: int, spec: NodeSpec) -> BftEngine:
        return BftEngine(config, node_keys[index], apps[index])

    network = NetworkConfig(
        default=LinkConfig(
            latency_ms=scenario.latency_ms,
            jitter_ms=scenario.jitter_ms,
            loss_ppm=scenario.loss_ppm,
            bytes_per_s=scenario.bytes_per_s,
        ),
        partitions=scenario.partitions,
    )
    sim_config = SimConfig(
        tuple(specs),
        network,
        seed=scenario.seed,
        label=scenario.engine.value,
        cpu_us_per_message=scenario.cpu_us_per_message,
    )
    evidence: list[EvidenceReport] = []
    attacker = _attacker(scenario, apps, node_keys) if scenario.attack else None

    def on_evidence(sim: Simulator, report: EvidenceReport) -> None:
        evidence.append(report)
        try:
            tx = apps[report.node].submit_evidence(node_keys[report.node], report.evidence)
        except MedchainError:
            return  # this node already reported it
        gossip(apps, tx)

    if scenario.stake:
        for key in keys:
            gossip(apps, _signed(key, 0, "staking.stake", AmountArgs(scenario.stake)))
            gossip(apps, _signed(key, 1, "staking.vote", VoteArgs(key.address, scenario.stake)))

    simulator = Simulator(sim_config, factory, scenario.faults, attacker, on_evidence=on_evidence)
    return ChainRun(scenario, simulator, apps, node_keys, attacker, evidence)


def gossip(apps: Sequence[LedgerApp], tx: Tx) -> None:
    """Put a transaction in every node's pending list (the network's mempool gossip,
    which the simulator does not model message by message)."""
    for app in apps:
        try:
            app.add_tx(tx)
        except MedchainError:
            continue  # already pending there, or no longer valid


def _signed(keys: AccountKeys, nonce: int, method: str, args: object) -> Tx:
    return signed_tx(keys, CHAIN_ID, nonce, method, args)


def simulate(scenario: Scenario) -> SimResult:
    return build(scenario).run()


# -- Byzantine behaviours ------------------------------------------------------------


def _assign_behaviours(scenario: Scenario) -> dict[int, Byzantine]:
    """Byzantine roles go to the last validators (PBFT's first primaries stay honest,
    so a run measures the behaviour, not an unlucky start)."""
    assigned: dict[int, Byzantine] = {}
    index = scenario.nodes - 1
    for kind, count in scenario.byzantine:
        for _ in range(count):
            if index < 0:
                raise ValueError("more Byzantine roles than nodes")
            assigned[index] = kind
            index -= 1
    return assigned


def _behaviour(
    kind: Byzantine, index: int, key: AccountKeys, keys: Sequence[AccountKeys], scenario: Scenario
) -> Behaviour | None:
    if kind is Byzantine.SILENT:
        return silent()
    if kind is Byzantine.FORGE:
        return forge(copies=1)
    if kind is Byzantine.REPLAY:
        return replay(scenario.latency_ms * 4)
    if kind is Byzantine.EQUIVOCATE:
        others = [k.public_key for i, k in enumerate(keys) if i != index]
        return rewrite(_equivocator(key, others))
    return None  # twins are honest engines that share a key


def _equivocator(
    key: AccountKeys, others: list[bytes]
) -> Callable[[Event, Sequence[SimAction]], Sequence[SimAction]]:
    half = len(others) // 2

    def split(event: Event, actions: Sequence[SimAction]) -> Sequence[SimAction]:
        out: list[SimAction] = []
        for action in actions:
            if not (isinstance(action, Broadcast) and action.kind == Kind.PROPOSAL):
                out.append(action)
                continue
            proposal = unwire(action.data)
            assert isinstance(proposal, Proposal)
            twin = sign(CHAIN_ID, _twin_of(proposal), key)
            other = wire(twin)
            out += [Send(k, action.data, action.kind) for k in others[:half]]
            out += [Send(k, other, action.kind) for k in others[half:]]
        return out

    return split


def _twin_of(proposal: Proposal) -> Proposal:
    """Another proposal for the same step: the same content a millisecond later."""
    content = proposal.block
    if isinstance(content, Ordering):
        return dataclasses.replace(
            proposal, block=dataclasses.replace(content, time_ms=content.time_ms + 1)
        )
    header = dataclasses.replace(content.header, time_ms=content.header.time_ms + 1)
    return dataclasses.replace(proposal, block=dataclasses.replace(content, header=header))


# -- the predictive attack -----------------------------------------------------------


def _attacker(
    scenario: Scenario, apps: Sequence[LedgerApp], keys: Sequence[AccountKeys]
) -> OfflineTargeting | VrfHunter:
    attack = scenario.attack
    assert attack is not None
    if scenario.engine is EngineKind.AFBFT:
        return VrfHunter(attack, apps, keys)

    def next_primaries(position: Position) -> list[int]:
        app = apps[0]
        if scenario.engine is EngineKind.DPOS:
            order = list(app.committee())
            start = position.height
        else:
            order = list(app.validators())
            last = position.last_block
            proposer = last.header.proposer if last is not None else b""
            start = next(
                (i for i, k in enumerate(order) if address_from_public_key(k) == proposer), 0
            )
        wanted = [order[(start + position.round + i) % len(order)] for i in range(attack.k)]
        return sorted({_node_of(keys, key) for key in wanted})

    return OfflineTargeting(
        next_primaries,
        start_ms=attack.from_ms,
        end_ms=attack.to_ms,
        reaction_ms=attack.reaction_ms,
        mode=OfflineMode.CRASH,
    )


def _node_of(keys: Sequence[AccountKeys], public_key: bytes) -> int:
    return next(i for i, k in enumerate(keys) if k.public_key == public_key)


class VrfHunter:
    """The best the predictive attacker can do against AFBFT: it cannot know the
    primary in advance, so it watches the candidates' proposals (each carries its
    VRF draw) and, `reaction_ms` after the first one of a height, takes the `k`
    lowest draws it has seen offline — once per height, keeping them down until the
    next strike. The blocks are already out by then."""

    def __init__(
        self, attack: Attack, apps: Sequence[LedgerApp], keys: Sequence[AccountKeys]
    ) -> None:
        self.attack = attack
        self.apps = apps
        self.keys = keys
        self.outputs: dict[int, dict[bytes, bytes]] = {}
        self.offline: frozenset[int] = frozenset()
        self.history: list[tuple[int, frozenset[int]]] = []
        self._struck: set[int] = set()

    def __call__(self, obs: Observation, ctl: AdversaryControl) -> None:
        attack = self.attack
        if isinstance(obs, Wakeup):
            if obs.tag == BEGIN:
                ctl.wake(attack.to_ms, "hunt/end")
            elif obs.tag.startswith("hunt/strike/") and obs.now_ms < attack.to_ms:
                self._strike(int(obs.tag.rsplit("/", 1)[1]), ctl)
            elif obs.tag == "hunt/end":
                self._apply(frozenset(), ctl)
            return
        if not isinstance(obs, MessageSent) or obs.kind != Kind.PROPOSAL:
            return
        if not attack.from_ms <= obs.now_ms < attack.to_ms:
            return
        message = unwire(obs.data)
        assert isinstance(message, Proposal)
        previous = next(
            (b for app in self.apps if (b := app.block_at(message.height - 1)) is not None),
            None,
        )
        if previous is None:
            return
        output = verified_vrf_output(
            message.proposer, afbft_alpha(previous, message.height), message.vrf_proof
        )
        if output is None:
            return
        seen = self.outputs.setdefault(message.height, {})
        if not seen:
            ctl.wake(obs.now_ms + attack.reaction_ms, f"hunt/strike/{message.height}")
        seen[message.proposer] = output

    def _strike(self, height: int, ctl: AdversaryControl) -> None:
        seen = self.outputs.get(height, {})
        lowest = sorted(seen, key=lambda k: seen[k])[: self.attack.k]
        self._apply(frozenset(_node_of(self.keys, k) for k in lowest), ctl)

    def _apply(self, target: frozenset[int], ctl: AdversaryControl) -> None:
        for node in sorted(self.offline - target):
            ctl.restart(node, ctl.now_ms)
        for node in sorted(target - self.offline):
            ctl.crash(node, ctl.now_ms)
        if target != self.offline:
            self.history.append((ctl.now_ms, target))
        self.offline = target
