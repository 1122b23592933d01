"""The explorer's edge tier: the gateways and how many devices there are of each kind in
each state, as the node's index of its blocks counts them (GET /v1/fleet and
/v1/gateways). Plain values for the templates, and as JSON for the live feed, which
redraws the section from the same values."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from medchain.app import DeviceKind, DeviceState, FleetCounts, Gateway, Organisation
from medchain.crypto import format_address

HOME_GATEWAYS = 10
"""Gateways the home page lists; the gateways page lists them all, a page at a time."""
GATEWAY_PAGE = 50
STATES = tuple(DeviceState)
"""The columns of the counts table, in the contract's order."""


class FleetChain(Protocol):
    """The reads the edge tier's views make (a node's HttpChain has them)."""

    def fleet_counts(self) -> FleetCounts: ...

    def gateways(self, start: int, count: int) -> tuple[int, list[Gateway]]: ...

    def member_organisations(self) -> list[Organisation]: ...


@dataclass(frozen=True)
class KindRow:
    kind: str
    counts: tuple[int, ...]
    """Per state of STATES."""
    total: int


@dataclass(frozen=True)
class GatewayRow:
    label: str
    address: str
    org_id: str
    state: str
    """In words: active, revoked, or idle while its organisation is no member."""
    height: int
    batches: int


@dataclass(frozen=True)
class FleetView:
    height: int
    complete_from: int
    gateways_active: int
    gateways_revoked: int
    states: tuple[str, ...]
    kinds: tuple[KindRow, ...]
    """Only the kinds with at least one device, in the contract's order."""
    totals: tuple[int, ...]
    """Per state of STATES, over every kind."""
    total: int
    gateway_total: int
    gateways: tuple[GatewayRow, ...]
    """The first HOME_GATEWAYS, in registration order."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def words(value: str) -> str:
    return value.replace("_", " ")


def _gateway_state(gateway: Gateway, members: set[str]) -> str:
    if not gateway.active:
        return "revoked"
    if gateway.org_id not in members:
        return "idle: its organisation is no longer a member"
    return "active"


def gateway_rows(chain: FleetChain, start: int, count: int) -> tuple[int, list[GatewayRow]]:
    """How many gateways there are, and the rows of `count` of them from `start`."""
    total, found = chain.gateways(start, count)
    members = {org.org_id for org in chain.member_organisations()} if found else set()
    rows = [
        GatewayRow(
            g.label,
            format_address(g.address),
            g.org_id,
            _gateway_state(g, members),
            g.height,
            g.batch_count,
        )
        for g in found
    ]
    return total, rows


def _kind_rows(counts: FleetCounts) -> tuple[KindRow, ...]:
    table = {(c.kind, c.state): c.count for c in counts.devices}
    rows = []
    for kind in DeviceKind:
        row = tuple(table.get((kind, state), 0) for state in STATES)
        if any(row):
            rows.append(KindRow(words(kind.value), row, sum(row)))
    return tuple(rows)


def fleet_view(chain: FleetChain) -> FleetView:
    counts = chain.fleet_counts()
    kinds = _kind_rows(counts)
    totals = tuple(sum(row.counts[i] for row in kinds) for i in range(len(STATES)))
    gateway_total, gateways = gateway_rows(chain, 0, HOME_GATEWAYS)
    return FleetView(
        height=counts.height,
        complete_from=counts.complete_from,
        gateways_active=counts.gateways_active,
        gateways_revoked=counts.gateways_revoked,
        states=tuple(s.value for s in STATES),
        kinds=kinds,
        totals=totals,
        total=sum(totals),
        gateway_total=gateway_total,
        gateways=tuple(gateways),
    )
