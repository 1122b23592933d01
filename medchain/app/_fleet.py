"""The edge tier counted: how many gateways and devices a node's index of its blocks
lists. Not contract state (the devices contract keeps both by key only, with no
counter): the node derives these beside the state, and the API and the client share
the shapes, as they share `Batch`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from medchain.app._devices import DeviceKind, DeviceState

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class DeviceCount:
    kind: DeviceKind
    state: DeviceState
    """The state in force at the height counted at."""
    count: int


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """The edge tier at one height, as a node's index of its blocks lists it."""

    height: int
    """The height the devices' states in force are judged at: the latest committed."""
    complete_from: int
    """The lowest height indexed: gateways and devices registered below it are not
    counted yet (0 once the node holds every block; a node that joined from a snapshot
    counts older ones as it fetches their blocks)."""
    gateways_active: int
    gateways_revoked: int
    devices: tuple[DeviceCount, ...]
    """One per (kind, state) with at least one device, by kind then state."""

    @property
    def device_total(self) -> int:
        return sum(c.count for c in self.devices)

    def by_kind(self) -> dict[DeviceKind, int]:
        return _totals((c.kind, c.count) for c in self.devices)

    def by_state(self) -> dict[DeviceState, int]:
        return _totals((c.state, c.count) for c in self.devices)


def _totals(pairs: Iterable[tuple[K, int]]) -> dict[K, int]:
    totals: dict[K, int] = {}
    for key, count in pairs:
        totals[key] = totals.get(key, 0) + count
    return totals
