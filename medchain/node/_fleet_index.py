"""Each node's index of the edge tier: the gateways registered and their devices,
counted by kind and by state, for the operator's explorer.

The devices contract keeps gateways and devices by key only: the state has no list of
them and no counter, and adding one would change the state transitions (and so every
state root of every existing chain). So each node lists them here, beside the state,
from the successful devices transactions of the blocks it stores, as it lists the
batches' bundles (`VitalsIndex`): a block names which gateways and devices it
touched, and each one's row is then copied from the committed state. Every later
change of a device or a gateway is in a later block that touches it again, so once the
index has caught up with the store every row is what the state holds, whatever order
the blocks were indexed in (a backfill indexes them downwards). A penalty restriction
lapses without a transaction: the counts judge each device's state at the height they
are read at, as `Device.state_at` does.

The file sits beside the chain store (`chain.sqlite` -> `chain-fleet.sqlite`) and is
rebuilt from the blocks whenever it does not match them (`BlockIndex`)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from medchain.app import (
    METHODS,
    Device,
    DeviceCount,
    DeviceKind,
    DeviceState,
    FleetCounts,
    Gateway,
    State,
    get_device,
    get_gateway,
)
from medchain.crypto import address_from_public_key
from medchain.node._block_index import BlockIndex, path_beside
from medchain.store import ChainStore
from medchain.types import Block, DecodeError, Tx, tx_id

log = logging.getLogger("medchain.node.fleet")

INDEX_SUFFIX = "-fleet.sqlite"
"""The index of `DIR/chain.sqlite` is `DIR/chain-fleet.sqlite`."""
_DEVICE_METHODS = frozenset({"devices.register", "devices.set_state", "devices.report"})
"""What changes a device's kind or state (a relabelling changes neither)."""
_GATEWAY_METHODS = frozenset(
    {"devices.register_gateway", "devices.revoke_gateway", "devices.commit_batch"}
)
"""What changes a gateway (a batch counts in its `batch_count`)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS gateways (
    address BLOB PRIMARY KEY, label TEXT NOT NULL, registered_by BLOB NOT NULL,
    height INTEGER NOT NULL, active INTEGER NOT NULL, batch_count INTEGER NOT NULL,
    org_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gateways_by_height ON gateways (height, address);
CREATE TABLE IF NOT EXISTS devices (
    device BLOB PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
    restricted_until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS devices_by_state ON devices (kind, state, restricted_until);
"""
"""Gateways are listed in registration order (height, then address). The devices'
index holds every column the counts read, so counting never reads the table."""
_GATEWAY_COLUMNS = "address, label, registered_by, height, active, batch_count, org_id"


class FleetIndex(BlockIndex):
    """The gateways and devices of blocks [low, high] of one chain store, each as the
    committed state `state_of()` (the state at the store's latest block) holds it."""

    NAME = "fleet index"
    SCHEMA = _SCHEMA
    TABLES = ("gateways", "devices")
    VERSION = 1
    METHODS = _DEVICE_METHODS | _GATEWAY_METHODS

    def __init__(self, path: str, state_of: Callable[[], State]) -> None:
        super().__init__(path)
        self._state_of = state_of

    @classmethod
    def beside(cls, store: ChainStore, state_of: Callable[[], State]) -> FleetIndex:
        return cls(str(path_beside(store, INDEX_SUFFIX)), state_of)

    def _add(self, db: sqlite3.Connection, block: Block, oks: Sequence[bool]) -> None:
        devices, gateways = _touched(block.txs, oks)
        state = self._state_of()
        for address in sorted(devices):
            device = get_device(state, address)
            if device is not None:  # a successful call leaves it registered: always
                _put_device(db, device)
        for address in sorted(gateways):
            gateway = get_gateway(state, address)
            if gateway is not None:
                _put_gateway(db, gateway)

    # -- queries ----------------------------------------------------------------------

    def counts(self, height: int) -> FleetCounts:
        """Gateways by whether they are revoked, devices by kind and by the state in
        force at `height` (a penalty restriction ended before `height` counts as
        active)."""
        rows = self._db.execute(
            "SELECT kind, CASE WHEN state = ? AND restricted_until BETWEEN 1 AND ? THEN ? "
            "ELSE state END AS now, COUNT(*) FROM devices GROUP BY kind, now "
            "ORDER BY kind, now",
            (DeviceState.RESTRICTED.value, height - 1, DeviceState.ACTIVE.value),
        )
        devices = tuple(DeviceCount(DeviceKind(k), DeviceState(s), n) for k, s, n in rows)
        (active, revoked) = self._db.execute(
            "SELECT COALESCE(SUM(active), 0), COUNT(*) - COALESCE(SUM(active), 0) FROM gateways"
        ).fetchone()
        low = self.complete_from
        return FleetCounts(height, 0 if low is None else low, active, revoked, devices)

    def gateways(self, start: int, count: int) -> tuple[int, list[Gateway]]:
        """How many gateways there are, and `count` of them from position `start` in
        registration order."""
        (total,) = self._db.execute("SELECT COUNT(*) FROM gateways").fetchone()
        rows = self._db.execute(
            f"SELECT {_GATEWAY_COLUMNS} FROM gateways ORDER BY height, address LIMIT ? OFFSET ?",
            (count, start),
        )
        return total, [_gateway(row) for row in rows]


def _touched(txs: Sequence[Tx], oks: Sequence[bool]) -> tuple[set[bytes], set[bytes]]:
    """The devices and the gateways the successful transactions changed."""
    devices: set[bytes] = set()
    gateways: set[bytes] = set()
    for tx, ok in zip(txs, oks, strict=True):
        if not ok or tx.method not in FleetIndex.METHODS:
            continue
        if tx.method == "devices.commit_batch":
            gateways.add(address_from_public_key(tx.sender))
            continue
        try:
            args = tx.decoded_args(METHODS[tx.method][0])
        except DecodeError:  # a successful call decoded its arguments: cannot happen
            log.error("committed %s %s does not decode; not indexed", tx.method, tx_id(tx).hex())
            continue
        if tx.method == "devices.register":
            devices.add(address_from_public_key(args.device_key))
        elif tx.method in _DEVICE_METHODS:
            devices.add(args.device)
        else:
            gateways.add(args.gateway)
    return devices, gateways


def _put_device(db: sqlite3.Connection, device: Device) -> None:
    db.execute(
        "INSERT OR REPLACE INTO devices (device, kind, state, restricted_until) "
        "VALUES (?, ?, ?, ?)",
        (device.device, device.kind.value, device.state.value, device.restricted_until),
    )


def _put_gateway(db: sqlite3.Connection, g: Gateway) -> None:
    db.execute(
        f"INSERT OR REPLACE INTO gateways ({_GATEWAY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (g.address, g.label, g.registered_by, g.height, int(g.active), g.batch_count, g.org_id),
    )


def _gateway(row: Sequence[Any]) -> Gateway:
    address, label, registered_by, height, active, batch_count, org_id = row
    return Gateway(address, label, registered_by, height, bool(active), batch_count, org_id)
