"""What a simulated fleet ended as on chain (`medchain devices simulate`): how many
honest devices are in each state, and for each misbehaving one its state, strikes, the
states its audit trail went through and what the gateway refused of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from medchain.app import DeviceAuditEntry, DeviceState, restriction_lapses
from medchain.client import ChainBackend
from medchain.gateway._fleet_stream import FleetRun
from medchain.gateway._simulate import MisbehavingDevice, SimulatedDevice


@dataclass(frozen=True)
class Misbehaver:
    """One misbehaving device at the end of a run."""

    address: str
    misbehaviour: str
    state: str
    strikes: int
    history: list[str]
    """The states it went through, e.g. active, restricted until 57, banned."""
    refusals: Counter[str]
    """What the gateway refused of it, by error code."""


@dataclass(frozen=True)
class FleetOutcome:
    height: int
    """The chain height the states are read at."""
    honest: Counter[str]
    """Honest devices by state (`unregistered` when the chain does not know one)."""
    misbehaving: list[Misbehaver]


def fleet_outcome(
    chain: ChainBackend, devices: Sequence[SimulatedDevice], run: FleetRun
) -> FleetOutcome:
    """Read every device's state on chain (and a misbehaving one's audit trail) once
    the gateway has committed the run."""
    states = {d.keys.address: chain.device(d.keys.address) for d in devices}
    height = chain.height
    bad = [d for d in devices if isinstance(d, MisbehavingDevice)]
    audits = {d.keys.address: chain.device_audit(d.keys.address) for d in bad}
    honest = Counter(
        s.state_at(height).value if s else "unregistered"
        for d in devices
        if not isinstance(d, MisbehavingDevice)
        for s in [states[d.keys.address]]
    )
    misbehaving = []
    for d in bad:
        found = states[d.keys.address]
        misbehaving.append(
            Misbehaver(
                d.keys.address_text,
                d.mode.value,
                found.state_at(height).value if found else "unregistered",
                found.strikes if found else 0,
                state_history(audits[d.keys.address], height),
                run.refusals.get(d.keys.address, Counter()),
            )
        )
    return FleetOutcome(height, honest, misbehaving)


def state_history(audit: Sequence[DeviceAuditEntry], height: int) -> list[str]:
    """The states a device went through, from its audit trail (`/v1/devices/{a}/audit`)
    up to `height`: e.g. active, restricted until 57, active (the penalty lapsed),
    restricted until 70, banned."""
    history: list[str] = []
    for entry, lapsed in zip(audit, restriction_lapses(audit, height), strict=True):
        shown = entry.state.value
        if entry.state is DeviceState.RESTRICTED and entry.restricted_until:
            shown += f" until {entry.restricted_until}"
        if not history or history[-1] != shown:
            history.append(shown)
        if lapsed:
            history.append(DeviceState.ACTIVE.value)
    return history
