"""Read-only queries on the committed chain, shared by every chain holder.

`LocalChain`, `LedgerApp` (and so the networked node) and the HTTP API answer the
same questions the same way: this mixin holds the answers (those on organisations,
credentials and attestations in `AccessQueries`, those on consent in
`ConsentQueries`). A class using it keeps
`ledger` (the committed state) and `store` (blocks and receipts), calls
`index_committed` after storing each block and `close_index` when it closes: the
gateways' bundles, and the lists and counts of gateways and devices, are answered from
the node's own indexes of the blocks (`VitalsIndex`, `FleetIndex`), each opened beside
the store by its first query (the node opens them when it starts) and kept up to date
by each commit from then on."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence

from medchain import app
from medchain.app import (
    Account,
    AnonEntry,
    AnonScope,
    AuditEntry,
    Batch,
    Candidate,
    Device,
    DeviceAuditEntry,
    FleetCounts,
    Gateway,
    Identity,
    Ledger,
    Record,
    RecordVersion,
    ResearchEntry,
    Role,
    StakeAccount,
    VitalsEntry,
)
from medchain.crypto import SearchToken
from medchain.node._access_queries import AccessQueries
from medchain.node._block_index import BlockIndex
from medchain.node._consent_queries import ConsentQueries
from medchain.node._fleet_index import FleetIndex
from medchain.node._vitals_index import VitalsIndex
from medchain.store import ChainStore, DiskFull, StoreError
from medchain.types import Block, Header, Receipt

log = logging.getLogger("medchain.node.queries")

_WHAT_IT_LISTS = {VitalsIndex.NAME: "bundles", FleetIndex.NAME: "gateways and devices"}
"""What each index lists, for the log."""


class ChainQueries(AccessQueries, ConsentQueries):
    ledger: Ledger
    store: ChainStore
    _vitals_index: VitalsIndex | None = None
    _fleet_index: FleetIndex | None = None

    # -- blocks and transactions --------------------------------------------------------

    @property
    def height(self) -> int:
        return self.store.latest_height()

    def latest_block(self) -> Block:
        return self.store.latest_block()

    def block_at(self, height: int) -> Block | None:
        return self.store.block_at(height)

    def blocks(self, from_height: int, to_height: int) -> Iterator[Block]:
        """The blocks held from `from_height` to `to_height` inclusive, in order, read
        in batches rather than one query each."""
        return self.store.blocks(from_height, to_height)

    def block_summaries(
        self, from_height: int, to_height: int
    ) -> Iterator[tuple[Header, tuple[bytes, ...]]]:
        """Each held block's header and transaction ids, as `blocks` reads them, with
        no transaction decoded."""
        return self.store.block_summaries(from_height, to_height)

    def block_ids(self, heights: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        return self.store.block_ids(heights)

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self.store.receipt(tx_hash)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index in block) of a committed transaction."""
        return self.store.tx_location(tx_hash)

    # -- contract state ---------------------------------------------------------------

    def account(self, address: bytes) -> Account:
        return app.get_account(self.ledger.state, address)

    def identity(self, address: bytes) -> Identity | None:
        return app.get_identity(self.ledger.state, address)

    def record(self, record_id: bytes) -> Record | None:
        return app.get_record(self.ledger.state, record_id)

    def record_version(self, record_id: bytes, number: int) -> RecordVersion | None:
        return app.get_version(self.ledger.state, record_id, number)

    def audit(self, record_id: bytes) -> list[AuditEntry]:
        record = self.record(record_id)
        return [] if record is None else app.audit_trail(self.ledger.state, record)

    def patient_records(self, patient: bytes) -> list[bytes]:
        return app.patient_records(self.ledger.state, patient)

    def search(self, owner: bytes, token: SearchToken) -> list[list[bytes]]:
        """Encrypted index values of `owner` under each label key of `token` (sse_lookup)."""
        return app.sse_lookup(self.ledger.state, owner, token)

    def research_data(self, institution: bytes) -> list[ResearchEntry]:
        return app.get_data(self.ledger.state, institution)

    def anon_scope(self, name: str) -> AnonScope | None:
        return app.get_scope(self.ledger.state, name)

    def anon_entries(self, name: str) -> list[AnonEntry]:
        return app.scope_entries(self.ledger.state, name)

    def role_count(self, role: Role) -> int:
        return app.role_count(self.ledger.state, role)

    def role_member(self, role: Role, index: int) -> bytes | None:
        return app.role_member(self.ledger.state, role, index)

    def stake(self, address: bytes) -> StakeAccount:
        return app.get_stake(self.ledger.state, address)

    def candidates(self) -> list[Candidate]:
        return app.ranked_candidates(self.ledger.state)

    # -- devices and gateways -----------------------------------------------------------

    def device(self, device: bytes) -> Device | None:
        return app.get_device(self.ledger.state, device)

    def devices(self, addresses: Sequence[bytes]) -> tuple[int, list[Device | None]]:
        """The height read at, and each address's device (None for an unknown one), in
        order. The height comes with the devices because the state in force,
        `device.state_at(height)`, depends on it (a penalty restriction lapses by
        itself): both are read from one committed state, so over HTTP they are one
        request and can never be a state of one block judged at another's height."""
        state = self.ledger.state
        return self.height, [app.get_device(state, address) for address in addresses]

    def devices_of(self, patient: bytes) -> list[Device]:
        """The patient's devices, in registration order."""
        return app.devices_of(self.ledger.state, patient)

    def device_audit(self, device: bytes) -> list[DeviceAuditEntry]:
        """The device's audit trail; empty for an unknown device, as `audit` is."""
        found = self.device(device)
        return [] if found is None else app.device_audit(self.ledger.state, found)

    def guardians_of(self, patient: bytes) -> tuple[bytes, ...]:
        """The patient's guardians (current `devices` proxies) at the latest block."""
        return app.guardians_of(self.ledger.state, patient, self._latest_time_ms())

    def _latest_time_ms(self) -> int:
        """The latest block's time: what an expiry is judged by between blocks."""
        return self.latest_block().header.time_ms

    def proxies_of(self, patient: bytes) -> list[app.Proxy]:
        """The patient's proxies (expired ones too), by the proxy's address."""
        return app.proxies_of(self.ledger.state, patient)

    def patients_of(self, proxy: bytes) -> list[app.Proxy]:
        """The relations in which `proxy` acts for a patient, by the patient's address."""
        return app.patients_of(self.ledger.state, proxy)

    def required_readers(self, patient: bytes) -> tuple[bytes, ...]:
        """Whom a record written for the patient must be wrapped for besides the patient
        (their `read` proxies), as of the latest block's time."""
        return app.required_readers(self.ledger.state, patient, self._latest_time_ms())

    def vitals_recipients(self, patients: Sequence[bytes]) -> list[dict[bytes, bytes] | None]:
        """Per patient, in order: whom a gateway seals the patient's bundles for (the
        patient, guardians and vitals readers) and each one's encryption key (empty if
        they have none); None for an address that is not a registered patient. One read
        for many patients, so a gateway refreshes them all in one request."""
        state, now_ms = self.ledger.state, self._latest_time_ms()
        found: list[dict[bytes, bytes] | None] = []
        for patient in patients:
            identity = app.get_identity(state, patient)
            if identity is None or identity.role is not app.Role.PATIENT:
                found.append(None)
                continue
            addresses = sorted(
                {
                    patient,
                    *app.guardians_of(state, patient, now_ms),
                    *app.vitals_readers_of(state, patient),
                }
            )
            keys = {}
            for address in addresses:
                reader = app.get_identity(state, address)
                keys[address] = b"" if reader is None else reader.encryption_key
            found.append(keys)
        return found

    # -- break-glass --------------------------------------------------------------------

    def emergency_policy(self, patient: bytes) -> app.EmergencyPolicy | None:
        return app.get_policy(self.ledger.state, patient)

    def emergency_request(self, request_id: bytes) -> app.EmergencyRequest | None:
        return app.get_emergency_request(self.ledger.state, request_id)

    def emergency_answers(self, request_id: bytes) -> list[app.EmergencyAnswer]:
        """The request's answers by share index; empty for an unknown request."""
        request = self.emergency_request(request_id)
        return [] if request is None else app.emergency_answers(self.ledger.state, request)

    def pending_emergency_requests(self, org_id: str) -> list[app.EmergencyRequest]:
        """What `org_id`'s account has yet to answer, as of the latest block's time."""
        now_ms = self.latest_block().header.time_ms
        return app.pending_emergency_requests(self.ledger.state, org_id, now_ms)

    def emergency_requests_of(self, patient: bytes) -> list[app.EmergencyRequest]:
        return app.emergency_requests_of(self.ledger.state, patient)

    def emergency_requests_by_org(self, org_id: str) -> list[app.EmergencyRequest]:
        return app.emergency_requests_by_org(self.ledger.state, org_id)

    def notifications_of(self, patient: bytes) -> list[app.Notification]:
        return app.notifications_of(self.ledger.state, patient)

    # -- key recovery -------------------------------------------------------------------

    def recovery_policy(self, patient: bytes) -> app.RecoveryPolicy | None:
        return app.get_recovery_policy(self.ledger.state, patient)

    def recovery_request(self, request_id: bytes) -> app.RecoveryRequest | None:
        return app.get_recovery_request(self.ledger.state, request_id)

    def recovery_requests_of(self, patient: bytes) -> list[app.RecoveryRequest]:
        return app.recovery_requests_of(self.ledger.state, patient)

    def guardian_recovery_requests(self, guardian: bytes) -> list[app.RecoveryRequest]:
        return app.guardian_recovery_requests(self.ledger.state, guardian)

    def member_organisations(self) -> list[app.Organisation]:
        return app.member_organisations(self.ledger.state)

    def gateway(self, address: bytes) -> Gateway | None:
        return app.get_gateway(self.ledger.state, address)

    def disclosure_head(self, committer: bytes) -> app.HeadCommit | None:
        return app.latest_head(self.ledger.state, committer)

    def batch(self, batch_id: bytes) -> Batch | None:
        """The batch's header from the committed state, its bundles from the index
        (none while its block is not indexed: see `vitals_complete_from`)."""
        header = app.get_batch_header(self.ledger.state, batch_id)
        if header is None:
            return None
        bundles = self.vitals_index().bundles_of(batch_id)
        return Batch(
            header.batch_id,
            header.gateway,
            header.root,
            header.count,
            bundles,
            header.height,
            header.tx_id,
        )

    def vitals(
        self, patient: bytes, from_ms: int, to_ms: int, device: bytes | None = None
    ) -> list[VitalsEntry]:
        """The patient's bundles of readings overlapping [from_ms, to_ms] (of `device`
        only, if given); InvalidArgument for a range the query does not answer."""
        return self.vitals_index().vitals(patient, from_ms, to_ms, device)

    def vitals_complete_from(self) -> int:
        """The lowest height whose batches `vitals` and `batch` list: 0 when this node
        holds every block; a node that joined from a snapshot lists the batches from the
        snapshot's height, and older ones as it fetches their blocks."""
        low = self.vitals_index().complete_from
        return 0 if low is None else low

    # -- the index of bundles -----------------------------------------------------------

    def vitals_index(self) -> VitalsIndex:
        """The index of the batches' bundles, caught up with the stored blocks."""
        if self._vitals_index is None:
            self._vitals_index = VitalsIndex.beside(self.store)
        self._vitals_index.catch_up(self.store)
        return self._vitals_index

    def fleet_index(self) -> FleetIndex:
        """The index of gateways and devices, caught up with the stored blocks."""
        if self._fleet_index is None:
            self._fleet_index = FleetIndex.beside(self.store, lambda: self.ledger.state)
        self._fleet_index.catch_up(self.store)
        return self._fleet_index

    def fleet_counts(self) -> FleetCounts:
        """Gateways active and revoked, devices by kind and by the state in force at
        the latest height, as far down as the index reaches (`complete_from`)."""
        return self.fleet_index().counts(self.height)

    def fleet_complete_from(self) -> int:
        """The lowest height whose gateways and devices `fleet_counts` and `gateways`
        list: 0 when this node holds every block (see `vitals_complete_from`)."""
        low = self.fleet_index().complete_from
        return 0 if low is None else low

    def gateways(self, start: int, count: int) -> tuple[int, list[Gateway]]:
        """How many gateways the index lists, and `count` of them from `start`, in
        registration order."""
        return self.fleet_index().gateways(start, count)

    def index_committed(self, block: Block, receipts: Sequence[Receipt]) -> None:
        """`block` was stored with `receipts`: index it in each index that is open (a
        store that is only replayed into, as `recover` does, never opens one). A
        failure (a full disk) is logged and changes nothing else: the index catches up
        from the blocks."""
        for index in (self._vitals_index, self._fleet_index):
            if index is None:
                continue
            try:
                index.add_committed(block, receipts, self.store)
            except (sqlite3.Error, StoreError) as exc:  # StoreError: DiskFull
                # a full disk stops the node, which says so once as an error; the index
                # itself only falls behind, and catches up
                report = log.warning if isinstance(exc, DiskFull) else log.error
                report(
                    "could not index the %s of block %d (%r); they are indexed from the "
                    "stored blocks once the index can be written",
                    _WHAT_IT_LISTS.get(index.NAME, index.NAME),
                    block.header.height,
                    exc,
                )

    def close_index(self) -> None:
        indexes: tuple[BlockIndex | None, ...] = (self._vitals_index, self._fleet_index)
        self._vitals_index = self._fleet_index = None
        for index in indexes:
            if index is not None:
                index.close()

    def vitals_readers_of(self, patient: bytes) -> tuple[bytes, ...]:
        return app.vitals_readers_of(self.ledger.state, patient)
