"""What the SDK needs from a chain. The in-process LocalChain provides it today;
a client of a node's HTTP API provides the same methods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from medchain import app
from medchain.crypto import AccountKeys, SearchToken
from medchain.offchain import BlobStore
from medchain.types import Block, ChainParams, MedchainError, Receipt, Tx


@runtime_checkable
class SignsReads(Protocol):
    """A backend whose reads of sealed data a node authenticates (HttpChain): the SDK
    reads through a view signing as its account."""

    def reading_as(
        self, keys: AccountKeys, purpose: app.PurposeOfUse | None = None
    ) -> ChainBackend: ...


@dataclass(frozen=True, slots=True)
class SealedVersion:
    """What a reader needs to open a version: its ciphertext and the reader's own key
    wrap (the CID names the ciphertext)."""

    cid: str
    wrapped_key: bytes
    ciphertext: bytes


@runtime_checkable
class SealedReads(Protocol):
    """A chain that hands a reader a version's ciphertext with the reader's own wrap in
    one request (a node's API does)."""

    def sealed_version(self, record_id: bytes, number: int) -> SealedVersion | None: ...


class ChainBackend(Protocol):
    @property
    def chain_id(self) -> str: ...

    @property
    def params(self) -> ChainParams: ...

    @property
    def blobs(self) -> BlobStore:
        """Bodies by CID. A node stores a body only with the transaction naming it
        (`submit_with_body`) or in a gateway's signed bulk upload (`bulk_blobs`)."""
        ...

    def bulk_blobs(self, uploader: AccountKeys) -> BlobStore:
        """The store an edge gateway keeps its batches' bundles in, writing as
        `uploader` (a gateway registered on chain)."""
        ...

    @property
    def height(self) -> int:
        """The latest committed height (a device's state in force depends on it)."""
        ...

    def submit(self, tx: Tx) -> Receipt: ...

    def submit_with_body(self, tx: Tx, body: bytes) -> Receipt:
        """Store the off-chain `body` `tx` names and submit `tx`, waiting for its commit
        as `submit` does; a refused transaction stores nothing."""
        ...

    def submit_many(self, txs: Sequence[Tx]) -> list[Receipt | MedchainError]:
        """Submit together and wait for all: per transaction its receipt or the error
        that refused it (one sender's successive nonces: one wait, not one each)."""
        ...

    def account(self, address: bytes) -> app.Account: ...

    def identity(self, address: bytes) -> app.Identity | None: ...

    def record(self, record_id: bytes) -> app.Record | None: ...

    def record_version(self, record_id: bytes, number: int) -> app.RecordVersion | None: ...

    def audit(self, record_id: bytes) -> list[app.AuditEntry]: ...

    def emergency_policy(self, patient: bytes) -> app.EmergencyPolicy | None:
        """The patient's break-glass policy: a record writer wraps for its set."""
        ...

    def patient_records(self, patient: bytes) -> list[bytes]: ...

    def search(self, owner: bytes, token: SearchToken) -> list[list[bytes]]: ...

    def research_data(self, institution: bytes) -> list[app.ResearchEntry]: ...

    def anon_scope(self, name: str) -> app.AnonScope | None: ...

    def anon_entries(self, name: str) -> list[app.AnonEntry]: ...

    def role_count(self, role: app.Role) -> int: ...

    def role_member(self, role: app.Role, index: int) -> bytes | None: ...

    def stake(self, address: bytes) -> app.StakeAccount: ...

    def candidates(self) -> list[app.Candidate]: ...

    def device(self, device: bytes) -> app.Device | None: ...

    def devices(self, addresses: Sequence[bytes]) -> tuple[int, list[app.Device | None]]:
        """Many devices in one read: the height the answer is for and, in order, each
        address's device or None. The height comes first because a device's state in
        force is `device.state_at(height)`: reading `height` separately could pair the
        devices with a later block (and costs another request over HTTP)."""
        ...

    def devices_of(self, patient: bytes) -> list[app.Device]: ...

    def device_audit(self, device: bytes) -> list[app.DeviceAuditEntry]: ...

    def guardians_of(self, patient: bytes) -> tuple[bytes, ...]: ...

    def proxies_of(self, patient: bytes) -> list[app.Proxy]:
        """The patient's proxies (expired ones too), by the proxy's address."""
        ...

    def patients_of(self, proxy: bytes) -> list[app.Proxy]:
        """The relations in which `proxy` acts for a patient, by the patient's address."""
        ...

    def required_readers(self, patient: bytes) -> tuple[bytes, ...]:
        """Whom a record written for the patient must be wrapped for besides the patient
        (their current `read` proxies), as of the latest block."""
        ...

    # -- consent: standing consents and each reader's terms --------------------------

    def latest_block(self) -> Block:
        """The latest committed block (its time judges expiries between blocks)."""
        ...

    def consents_of(self, patient: bytes) -> list[app.StandingConsent]:
        """The patient's standing consents, revoked and expired ones too, by id."""
        ...

    def consent(self, consent_id: int) -> app.StandingConsent | None: ...

    def covering_consents(
        self, patient: bytes, author: bytes, resource_type: str
    ) -> list[app.StandingConsent]:
        """The patient's consents in force that a record of `resource_type` by `author`
        falls under, codes aside (the writer evaluates them on the plaintext)."""
        ...

    def reader_grants(self, record_id: bytes) -> list[app.ReaderGrant]:
        """The terms of each current reader of the record, by reader."""
        ...

    def vitals_recipients(self, patients: Sequence[bytes]) -> list[dict[bytes, bytes] | None]:
        """Per patient, in order: the patient, guardians and vitals readers, each with
        their encryption key (empty if none); None for an address that is not a
        registered patient."""
        ...

    def gateway(self, address: bytes) -> app.Gateway | None: ...

    def fleet_counts(self) -> app.FleetCounts:
        """Gateways active and revoked, devices by kind and by state in force at the
        latest height, as far down as the node's index of its blocks reaches."""
        ...

    def gateways(self, start: int, count: int) -> tuple[int, list[app.Gateway]]:
        """How many gateways there are, and `count` of them from `start`, in
        registration order."""
        ...

    def disclosure_head(self, committer: bytes) -> app.HeadCommit | None:
        """The latest head of its disclosure log a node or gateway committed (None: none)."""
        ...

    def batch(self, batch_id: bytes) -> app.Batch | None: ...

    def vitals(
        self, patient: bytes, from_ms: int, to_ms: int, device: bytes | None = None
    ) -> list[app.VitalsEntry]:
        """The patient's bundles of device readings overlapping [from_ms, to_ms]."""
        ...

    def vitals_readers_of(self, patient: bytes) -> tuple[bytes, ...]: ...

    # -- who may act: organisations, credentials, attestations ------------------

    def organisations(self) -> list[app.Organisation]: ...

    def organisation(self, org_id: str) -> app.Organisation | None: ...

    def proposals(self) -> list[app.Proposal]: ...

    def proposal(self, proposal_id: int) -> app.Proposal | None: ...

    def staff_of(self, org_id: str) -> list[app.Credential]: ...

    def credentials_of(self, subject: bytes) -> list[app.Credential]: ...

    def credential_history(self, subject: bytes, org_id: str) -> list[app.CredentialEvent]: ...

    def attestations_of(self, patient: bytes) -> list[app.Attestation]: ...

    def is_verified_patient(self, patient: bytes) -> bool: ...


def reads_signed_by(
    chain: ChainBackend, keys: AccountKeys, purpose: app.PurposeOfUse | None = None
) -> ChainBackend:
    """`chain`, its reads of sealed data signed by `keys` (for `purpose`) where a node
    authenticates them; an in-process chain as it is."""
    return chain.reading_as(keys, purpose) if isinstance(chain, SignsReads) else chain
