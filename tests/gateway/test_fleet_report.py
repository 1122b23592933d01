"""What a simulated fleet ended as on chain (medchain.gateway._fleet_report)."""

from __future__ import annotations

import dataclasses
from collections import Counter

from medchain.app import DeviceAction, DeviceAuditEntry, DeviceState
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import (
    DeviceKind,
    FleetRun,
    MisbehavingDevice,
    Misbehaviour,
    SimulatedDevice,
    fleet_outcome,
    state_history,
)


def _entry(height: int, state: DeviceState, until: int = 0, strikes: int = 0) -> DeviceAuditEntry:
    action = DeviceAction.REGISTERED if height == 1 else DeviceAction.STRIKE
    return DeviceAuditEntry(0, height, 0, b"", action, b"", state, until, strikes, "", b"")


def test_state_history_from_the_audit_trail() -> None:
    active, restricted, banned = DeviceState.ACTIVE, DeviceState.RESTRICTED, DeviceState.BANNED
    trail = [
        _entry(1, active),
        _entry(5, active, strikes=1),
        _entry(9, restricted, 17, 3),
        _entry(20, restricted, 28, 4),  # struck again once the first restriction lapsed
        _entry(24, banned, strikes=5),  # struck while restricted
    ]
    assert state_history(trail, 40) == [
        "active",
        "restricted until 17",
        "active",
        "restricted until 28",
        "banned",
    ]
    assert state_history(trail[:3], 17) == ["active", "restricted until 17"]
    assert state_history(trail[:3], 18) == ["active", "restricted until 17", "active"]
    assert state_history([], 3) == []


@dataclasses.dataclass
class _Device:
    """The part of a chain's Device the outcome reads."""

    state: DeviceState
    restricted_until: int = 0
    strikes: int = 0

    def state_at(self, height: int) -> DeviceState:
        if self.state is DeviceState.RESTRICTED and 0 < self.restricted_until < height:
            return DeviceState.ACTIVE
        return self.state


class _Chain:
    def __init__(self, height: int, devices: dict[bytes, _Device]) -> None:
        self.height = height
        self.devices = devices
        self.trails: dict[bytes, list[DeviceAuditEntry]] = {}

    def device(self, device: bytes) -> _Device | None:
        return self.devices.get(device)

    def device_audit(self, device: bytes) -> list[DeviceAuditEntry]:
        return self.trails.get(device, [])


def test_the_outcome_counts_honest_states_and_follows_each_misbehaving_device() -> None:
    patient = format_address(AccountKeys.generate().address)
    honest = [
        SimulatedDevice(DeviceKind.THERMOMETER, patient, keys=AccountKeys.generate())
        for _ in range(3)
    ]
    flood = MisbehavingDevice(
        DeviceKind.PULSE_OXIMETER, patient, Misbehaviour.FLOOD, keys=AccountKeys.generate()
    )
    ghost = MisbehavingDevice(
        DeviceKind.PULSE_OXIMETER, patient, Misbehaviour.REPLAY, keys=AccountKeys.generate()
    )
    chain = _Chain(
        30,
        {
            honest[0].keys.address: _Device(DeviceState.ACTIVE),
            honest[1].keys.address: _Device(DeviceState.RESTRICTED, 40, 3),
            flood.keys.address: _Device(DeviceState.RESTRICTED, 20, 3),  # lapsed at 30
        },
    )
    chain.trails[flood.keys.address] = [
        _entry(1, DeviceState.ACTIVE),
        _entry(9, DeviceState.RESTRICTED, 20, 3),
    ]
    run = FleetRun()
    run.refusals[flood.keys.address] = Counter(rate_limited=5, device_restricted=2)
    outcome = fleet_outcome(chain, [*honest, flood, ghost], run)  # type: ignore[arg-type]
    assert outcome.height == 30
    assert outcome.honest == Counter(active=1, restricted=1, unregistered=1)
    flooded, unknown = outcome.misbehaving
    assert flooded.address == flood.keys.address_text and flooded.misbehaviour == "flood"
    assert (flooded.state, flooded.strikes) == ("active", 3)
    assert flooded.history == ["active", "restricted until 20", "active"]
    assert flooded.refusals.most_common() == [("rate_limited", 5), ("device_restricted", 2)]
    assert (unknown.state, unknown.strikes, unknown.history) == ("unregistered", 0, [])
    assert unknown.refusals == Counter()
