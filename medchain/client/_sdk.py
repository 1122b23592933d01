"""The SDK a patient, doctor or institution uses: build and sign transactions,
encrypt FHIR resources for their readers, and open what they are allowed to read.
Everything sensitive is encrypted here, on the user's side, before it leaves."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medchain.app import (
    AddProxyArgs,
    AddVersionArgs,
    AmountArgs,
    AuditEntry,
    Batch,
    Bundle,
    CommitBatchArgs,
    CreateRecordArgs,
    Device,
    DeviceAuditEntry,
    DeviceKind,
    DeviceOffence,
    DeviceState,
    EmergencyWrapArgs,
    Gateway,
    Identity,
    NoArgs,
    NotAProxy,
    NotOwner,
    Proxy,
    ProxyRelation,
    ProxyScope,
    PurposeOfUse,
    Record,
    RecordVersion,
    RegisterArgs,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    RelabelArgs,
    RemoveProxyArgs,
    ReportArgs,
    ResearchEntry,
    ResearchGrantArgs,
    ResearchRevokeArgs,
    RevokeGatewayArgs,
    Role,
    SetStateArgs,
    TransferArgs,
    UnknownDevice,
    UnknownGateway,
    UnwarrantArgs,
    VersionWrap,
    VitalsReaderArgs,
    VoteArgs,
    WarrantArgs,
    WrongRole,
    new_batch_id,
    new_record_id,
    registration_message,
)
from medchain.client._backend import ChainBackend, SealedReads, reads_signed_by
from medchain.client._consents import ConsentActions
from medchain.client._deidentify import deidentify
from medchain.client._disclosures import DisclosureReads
from medchain.client._emergency_wraps import emergency_wrap_args, in_emergency_set
from medchain.client._envelope import (
    Sealed,
    open_sealed,
    profile_context,
    research_context,
    rewrap,
    seal,
    unwrap_for,
    version_context,
)
from medchain.client._erasure import ErasureActions, refuse_erased
from medchain.client._fhir import canonical_json, validate_resource
from medchain.client._labels import DeviceLabel, LabelStatus, read_label, seal_label
from medchain.client._orgs import OrganisationActions
from medchain.client._recovery import RecoveryActions
from medchain.client._search import (
    IndexUpdate,
    NoSearchCapability,
    RecordNotIndexed,
    SearchIndex,
    SearchResult,
    keywords_in,
    open_capability,
    open_records,
    search_with,
)
from medchain.crypto import AccountKeys, EntryKind, format_address, sha256, signed_tx
from medchain.offchain import cid_for
from medchain.types import MedchainError, Receipt, Tx, encode


class NotAReader(MedchainError):
    """The caller holds no wrapped key for what it tried to open."""

    code = "not_authorised"


class UnknownParty(MedchainError):
    code = "not_registered"


class BlobUnavailable(MedchainError):
    code = "blob_unavailable"


class UnknownBatch(MedchainError):
    code = "unknown_batch"


@dataclass(frozen=True, slots=True)
class ResearchItem:
    entry: ResearchEntry
    resource: dict[str, Any]


class MedchainClient(
    OrganisationActions, ConsentActions, ErasureActions, RecoveryActions, DisclosureReads
):
    """One account acting on one chain (an organisation admin's acts in
    `OrganisationActions`, grant terms and standing consents in `ConsentActions`)."""

    def __init__(
        self,
        keys: AccountKeys,
        chain: ChainBackend,
        search_state: Path | None = None,
        *,
        purpose: PurposeOfUse | None = None,
    ) -> None:
        """`search_state`: the encrypted file keeping this account's search epochs and
        counters (see `search_state_path`); without one they live in memory and are
        rebuilt from the chain by the next client. A node's chain (HttpChain) is read
        through a view that signs reads of sealed data as this account, for `purpose`
        (by default PATRQT for its own data, TREAT otherwise)."""
        self.keys = keys
        self.chain = reads_signed_by(chain, keys, purpose)
        self.search_index = SearchIndex(self, search_state)

    @property
    def address(self) -> bytes:
        return self.keys.address

    # -- transactions ---------------------------------------------------------------

    def build(
        self, method: str, args: object, fee: int | None = None, nonce: int | None = None
    ) -> Tx:
        """A signed transaction, by default carrying the account's next nonce."""
        return signed_tx(
            self.keys,
            self.chain.chain_id,
            self.chain.account(self.address).nonce if nonce is None else nonce,
            method,
            args,
            self.chain.params.min_fee if fee is None else fee,
        )

    def send(self, method: str, args: object, fee: int | None = None) -> Receipt:
        return self.chain.submit(self.build(method, args, fee))

    def send_with_body(
        self, method: str, args: object, body: bytes, fee: int | None = None
    ) -> Receipt:
        """`send` a transaction naming the off-chain `body`, which the node stores once
        it admitted the transaction."""
        return self.chain.submit_with_body(self.build(method, args, fee), body)

    # -- registry -------------------------------------------------------------------

    def register(
        self, role: Role = Role.PATIENT, name: str = "", details: Mapping[str, Any] | None = None
    ) -> Receipt:
        """Register this account: as a patient, whose name and details are sealed to the
        patient; or as a validator, once an organisation credentialed it for that. Other
        roles are not registered: an organisation's admin credentials clinicians
        (`issue_credential`), and organisations join by proposal."""
        if role is Role.PATIENT:
            profile = self._seal_profile({"name": name, **(details or {})})
            return self.send(
                "registry.register",
                RegisterArgs(
                    role, "", self.keys.encryption_public_key, profile, self.keys.ring_public_key
                ),
            )
        if role is not Role.VALIDATOR:
            raise WrongRole(
                f"an account cannot register itself as a {role.value}: a self-registered "
                "account is a patient; an organisation's admin credentials clinicians with "
                "`medchain org credential`, and organisations join by proposal"
            )
        public_profile = (
            json.dumps(dict(details or {}), sort_keys=True).encode() if details else b""
        )
        return self.send("registry.register", RegisterArgs(role, name, b"", public_profile, b""))

    def _seal_profile(self, profile: Mapping[str, Any]) -> bytes:
        context = profile_context(self.address)
        sealed = seal(
            json.dumps(profile, sort_keys=True).encode(),
            context,
            {self.address: self.keys.encryption_public_key},
        )
        return encode(_SealedProfile(sealed.wraps[0].wrapped_key, sealed.ciphertext))

    def my_profile(self) -> dict[str, Any]:
        identity = self._identity(self.address)
        if identity.role is not Role.PATIENT:
            return dict(json.loads(identity.profile)) if identity.profile else {}
        from medchain.types import decode

        sealed = decode(_SealedProfile, identity.profile)
        plain = open_sealed(
            self.keys, sealed.wrapped_key, sealed.ciphertext, profile_context(self.address)
        )
        return dict(json.loads(plain))

    def _identity(self, address: bytes) -> Identity:
        identity = self.chain.identity(address)
        if identity is None:
            raise UnknownParty(
                f"{format_address(address)} is not registered on chain {self.chain.chain_id}"
            )
        return identity

    def _reader_keys(self, addresses: Iterable[bytes]) -> dict[bytes, bytes]:
        found = {}
        for address in addresses:
            identity = self._identity(address)
            if not identity.encryption_key:
                raise UnknownParty(
                    f"{format_address(address)} ({identity.role.value}) has no encryption key "
                    "and cannot be given access to records"
                )
            found[address] = identity.encryption_key
        return found

    # -- records --------------------------------------------------------------------

    def put_record(
        self,
        patient: bytes,
        resource: Mapping[str, Any] | str | bytes,
        readers: Iterable[bytes] = (),
        keywords: Iterable[str] = (),
        pad: bool = False,
    ) -> bytes:
        """Validate, encrypt and register a FHIR resource for `patient`; returns the record id.

        The uploader is a reader of what it wrote (unless it is the patient), so it can
        read it back; the patient can revoke that like any other grant. With `keywords`,
        the record is also indexed under the uploader's own search key, by a second
        transaction right after the record's (see `index_record`). The readers the
        patient's standing consents give it are wrapped for too (`consented_readers`)."""
        validated = validate_resource(resource)
        words = keywords_in(keywords)  # a bad keyword is refused before anything is written
        consented = self.consented_readers(patient, validated)
        reader_set = {patient, *readers, *self.chain.required_readers(patient), *consented}
        if self.address != patient:
            reader_set.add(self.address)
        nonce = self.chain.account(self.address).nonce
        record_id = new_record_id(self.address, nonce)
        sealed = seal(
            canonical_json(validated), version_context(record_id, 1), self._reader_keys(reader_set)
        )
        args = CreateRecordArgs(
            patient,
            str(validated["resourceType"]),
            cid_for(sealed.ciphertext),
            sealed.ciphertext_hash,
            sealed.wraps,
            self._emergency_wraps(patient, validated, sealed, record_id, 1),
            self.consent_terms(consented),
        )
        self.send_with_body("records.create", args, sealed.ciphertext)
        if words:
            try:
                self.index_record(record_id, words, pad)
            except MedchainError as exc:
                raise RecordNotIndexed(record_id, exc) from exc
        return record_id

    def record(self, record_id: bytes) -> Record:
        record = self.chain.record(record_id)
        if record is None:
            raise _unknown_record(record_id)
        return record

    def read_record(self, record_id: bytes, version: int | None = None) -> dict[str, Any]:
        """Decrypt a version (the latest by default) that this account may read;
        RecordErased if its patient erased it."""
        record = self.record(record_id)
        refuse_erased(record)
        number = record.version_count if version is None else version
        context = version_context(record_id, number)
        if isinstance(self.chain, SealedReads):  # a node: the ciphertext and our wrap at once
            sealed = self.chain.sealed_version(record_id, number)
            if sealed is not None:
                return dict(
                    json.loads(
                        open_sealed(self.keys, sealed.wrapped_key, sealed.ciphertext, context)
                    )
                )
        stored = self.chain.record_version(record_id, number)  # a node may refuse: NotAReader
        if stored is None:
            raise MedchainError(f"record {record_id.hex()} has no version {number}")
        wrapped = self._my_wrap(stored)
        plaintext = open_sealed(
            self.keys, wrapped, self._fetch(stored.cid, stored.ciphertext_hash), context
        )
        return dict(json.loads(plaintext))

    def _my_wrap(self, version: RecordVersion) -> bytes:
        for wrap in version.wraps:
            if wrap.reader == self.address:
                return wrap.wrapped_key
        raise NotAReader(
            f"{format_address(self.address)} is not an authorised reader of version "
            f"{version.number} of record {version.record_id.hex()}; ask the patient to grant access"
        )

    def _fetch(self, cid: str, expected_hash: bytes) -> bytes:
        if not self.chain.blobs.has(cid):
            raise BlobUnavailable(
                f"the ciphertext {cid} is not in this node's blob store; fetch it from the "
                "uploading node"
            )
        data = self.chain.blobs.get(cid)
        if sha256(data) != expected_hash:
            raise BlobUnavailable(f"the ciphertext {cid} does not match the hash on chain")
        return data

    def grant(
        self,
        record_id: bytes,
        reader: bytes,
        purposes: Iterable[PurposeOfUse] = (),
        expires_ms: int = 0,
    ) -> Receipt:
        """Owner, or their `grant` proxy: let `reader` open every version this account
        can open (a proxy grants as itself, by proxy for the owner), for `purposes` (none
        named: treatment) until block time `expires_ms` (0 = never)."""
        ordered = tuple(sorted(set(purposes)))
        return self.send(
            "records.warrant", self.warrant_args(record_id, reader, ordered, expires_ms)
        )

    def warrant_args(
        self,
        record_id: bytes,
        reader: bytes,
        purposes: tuple[PurposeOfUse, ...] = (),
        expires_ms: int = 0,
        consent_id: int = 0,
    ) -> WarrantArgs:
        """Every version's content key, wrapped again for `reader` from this account's,
        with the grant's terms (or the standing consent it follows from)."""
        record = self.record(record_id)
        reader_key = self._reader_keys([reader])[reader]
        wraps = []
        for number in range(1, record.version_count + 1):
            stored = self.chain.record_version(record_id, number)
            assert stored is not None
            context = version_context(record_id, number)
            wraps.append(
                VersionWrap(
                    number, rewrap(self.keys, self._my_wrap(stored), context, reader, reader_key)
                )
            )
        return WarrantArgs(record_id, reader, tuple(wraps), purposes, expires_ms, consent_id)

    def revoke(self, record_id: bytes, reader: bytes) -> Receipt:
        return self.send("records.unwarrant", UnwarrantArgs(record_id, reader))

    def add_version(self, record_id: bytes, resource: Mapping[str, Any] | str | bytes) -> int:
        """Encrypt a new version under a fresh key for the owner, the current readers
        whose grant has not expired, the owner's required readers (`read` proxies) and the
        readers their standing consents give it only."""
        validated = validate_resource(resource)
        record = self.record(record_id)
        number = record.version_count + 1
        required = self.chain.required_readers(record.owner)
        consented = self.consented_readers(record.owner, validated)
        current = set(record.readers) - self.expired_readers(record)
        sealed = seal(
            canonical_json(validated),
            version_context(record_id, number),
            self._reader_keys({record.owner, *current, *required, *consented}),
        )
        self.send_with_body(
            "records.add_version",
            AddVersionArgs(
                record_id,
                cid_for(sealed.ciphertext),
                sealed.ciphertext_hash,
                sealed.wraps,
                self._emergency_wraps(record.owner, validated, sealed, record_id, number),
            ),
            sealed.ciphertext,
        )
        return number

    def _emergency_wraps(
        self,
        patient: bytes,
        resource: Mapping[str, Any],
        sealed: Sealed,
        record_id: bytes,
        version: int,
    ) -> tuple[EmergencyWrapArgs, ...]:
        """The wrap for the patient's emergency set, if its policy covers `resource`:
        the content key is the writer's own copy, which every writer holds."""
        policy = self.chain.emergency_policy(patient)
        if policy is None or not in_emergency_set(policy, resource):
            return ()
        own = next(w.wrapped_key for w in sealed.wraps if w.reader == self.address)
        content_key = unwrap_for(self.keys, own, version_context(record_id, version))
        return (emergency_wrap_args(policy, content_key, record_id, version),)

    def audit(self, record_id: bytes) -> list[AuditEntry]:
        self.record(record_id)
        return self.chain.audit(record_id)

    def my_records(self) -> list[bytes]:
        return self.chain.patient_records(self.address)

    # -- encrypted search (client/_search.py, docs/PRIVACY.md) ------------------------

    def index_record(
        self, record_id: bytes, keywords: Iterable[str], pad: bool = False
    ) -> list[Receipt]:
        """Index a record under keywords in this account's own encrypted index."""
        return self.index_records({record_id: keywords}, pad)

    def index_records(
        self, records: Mapping[bytes, Iterable[str]], pad: bool = False
    ) -> list[Receipt]:
        """Index several records at once. With `pad`, each keyword's entry count is raised
        to the next power of two with dummies; that hides counts among records indexed
        together (a patient indexing its history), not one record at a time."""
        updates = []
        for record_id, keywords in records.items():
            self.record(record_id)
            updates.append(IndexUpdate(record_id, tuple(keywords_in(keywords))))
        return self.search_index.write(updates, pad)

    def delete_from_index(
        self, record_id: bytes, keywords: Iterable[str], pad: bool = False
    ) -> list[Receipt]:
        """Tombstone a record under keywords: searches stop returning it (the earlier
        entries stay on chain, unlinkable to the tombstone until searched)."""
        update = IndexUpdate(record_id, tuple(keywords_in(keywords)), EntryKind.TOMBSTONE)
        return self.search_index.write([update], pad)

    def search(
        self, keyword: str, owner: bytes | None = None, decrypt: bool = False
    ) -> SearchResult:
        """Records indexed under `keyword` in this account's index; with `decrypt`, also
        the FHIR resources it may open (the others are skipped, with the reason)."""
        if owner is not None and owner != self.address:
            raise NoSearchCapability(
                f"you can search only your own index without a capability; ask "
                f"{format_address(owner)} for one (`medchain record search-grant`)"
            )
        ids = self.search_index.search(keyword)
        return open_records(self, ids) if decrypt else SearchResult(tuple(ids))

    def grant_search(self, reader: bytes, keywords: Iterable[str]) -> bytes:
        """A capability, sealed to `reader`, to search this account's index for `keywords`
        over the entries indexed so far. Hand the bytes over (e.g. as a file)."""
        reader_key = self._reader_keys([reader])[reader]
        return self.search_index.grant(reader, reader_key, keywords)

    def search_with_capability(
        self, capability: bytes, keyword: str, decrypt: bool = False
    ) -> SearchResult:
        """Search another account's index with a capability it granted this account."""
        ids = search_with(self, open_capability(self, capability), keyword)
        return open_records(self, ids) if decrypt else SearchResult(tuple(ids))

    # -- research -------------------------------------------------------------------

    def research_grant(self, record_id: bytes, institution: bytes) -> Receipt:
        """Owner, or their `grant` proxy who reads the record: give an institution a
        de-identified copy of the latest version, sealed for it and the owner. Anyone
        else is refused here, before a copy is made or sent (the node refuses it too)."""
        record = self.record(record_id)
        self._require_sharer(record, "share it with a research organisation")
        owner = record.owner
        resource = self.read_record(record_id)
        pseudonym_key = hmac.new(
            self.keys.encryption_secret,
            b"medchain/research-pseudonym" + institution,
            hashlib.sha256,
        ).digest()
        # the client's clock only decides which birth years reveal an age of 90+
        copy = deidentify(resource, pseudonym_key, reference_year=datetime.now(UTC).year)
        sealed = seal(
            canonical_json(copy),
            research_context(record_id, institution),
            self._reader_keys([owner, institution]),
        )
        cid = cid_for(sealed.ciphertext)
        return self.send_with_body(
            "research.grant",
            ResearchGrantArgs(record_id, institution, cid, sealed.ciphertext_hash, sealed.wraps),
            sealed.ciphertext,
        )

    def _require_sharer(self, record: Record, action: str) -> None:
        """Refuse as the chain would (`owner_or_grant_proxy`) unless this account is the
        record's owner or their current `grant` proxy, read from the chain's state."""
        if record.owner == self.address:
            return
        owner = format_address(record.owner)
        who = (
            f"only the patient who owns record {record.record_id.hex()} ({owner}) or their "
            f"current `grant` proxy may {action}"
        )
        proxies = self.chain.proxies_of(record.owner)
        held = next((p for p in proxies if p.proxy == self.address), None)
        if held is None:
            raise NotOwner(f"{who}; ask the patient to share it")
        if ProxyScope.GRANT not in held.scopes:
            scopes = ", ".join(s.value for s in held.scopes)
            raise NotAProxy(
                f"{who}: as their proxy you hold {scopes}, not grant; the patient adds the "
                "scope with `medchain proxy add`"
            )
        if not held.active(self.chain.latest_block().header.time_ms):
            raise NotAProxy(
                f"{who}: your proxy for them expired at {held.expires_ms} ms; the patient "
                "renews it with `medchain proxy add`"
            )

    def research_revoke(self, record_id: bytes, institution: bytes) -> Receipt:
        """Owner, or their `grant` proxy: withdraw the research copy only (a clinical
        reader grant stays). Anyone else is refused here, before anything is sent."""
        self._require_sharer(self.record(record_id), "withdraw its research copy")
        return self.send("research.revoke", ResearchRevokeArgs(record_id, institution))

    def research_data(self) -> list[ResearchItem]:
        """Institution: every de-identified record it may read, decrypted."""
        items = []
        for entry in self.chain.research_data(self.address):
            wrapped = next((w.wrapped_key for w in entry.wraps if w.reader == self.address), None)
            if wrapped is None:
                continue
            plain = open_sealed(
                self.keys,
                wrapped,
                self._fetch(entry.cid, entry.ciphertext_hash),
                research_context(entry.record_id, self.address),
            )
            items.append(ResearchItem(entry, dict(json.loads(plain))))
        return items

    # -- devices and gateways (paper 001's IoT tier) -----------------------------------

    def register_device(
        self, device_keys: AccountKeys, patient: bytes, kind: DeviceKind, label: str = ""
    ) -> Receipt:
        """Patient, guardian or hospital: bind a device to `patient`. The device key
        signs the proof of possession here, so only whoever holds the device can
        register it (its public key alone is not enough). The device's id is
        `device_keys.address`. The label (none if empty) is sealed for the patient and
        their guardians: nobody else reads it, the sender included unless one of them."""
        device = device_keys.address
        sealed = self._seal_device_label(label, device, patient) if label else b""
        proof = device_keys.sign(registration_message(self.chain.chain_id, patient))
        return self.send(
            "devices.register",
            RegisterDeviceArgs(device_keys.public_key, patient, kind, sealed, proof),
        )

    def device_label(self, device: Device) -> DeviceLabel:
        """The device's label as this account reads it: opened if sealed for it."""
        return read_label(device, self.keys)

    def relabel_device(self, device: bytes, label: str | None = None) -> Receipt:
        """Patient, guardian or hospital: give the device a new label (an empty one
        removes it), sealed for the patient and their guardians of now. Without a label,
        seal the current one again: after the guardians changed, or to seal a label an
        earlier medchain stored in clear; this account must be able to read it."""
        found = self.device(device)
        if label is None:
            current = self.device_label(found)
            if current.status not in (LabelStatus.OPENED, LabelStatus.IN_CLEAR):
                why = {
                    LabelStatus.NONE: "has no label",
                    LabelStatus.SEALED: "has a label sealed for others (the patient and "
                    "their guardians when it was written)",
                    LabelStatus.DAMAGED: "has a label that does not open",
                }[current.status]
                raise NotAReader(
                    f"device {format_address(device)} {why}, so this account cannot seal "
                    "it again: give the new label"
                )
            label = current.text
        sealed = self._seal_device_label(label, device, found.patient) if label else b""
        return self.send("devices.relabel", RelabelArgs(device, sealed))

    def reseal_device_labels(self, patient: bytes | None = None) -> list[bytes]:
        """Patient or guardian: seal again each label of the patient's devices (by
        default this account's) that is not sealed for exactly the patient and their
        guardians of now, or is in clear, and that this account reads; a guardian added
        since reads them then, a guardian removed no longer reads a label written
        later. Returns the devices relabelled."""
        owner = self.address if patient is None else patient
        readers = tuple(sorted({owner, *self.guardians_of(owner)}))
        done = []
        for device in self.devices_of(owner):
            current = self.device_label(device)
            stale = current.status is LabelStatus.OPENED and current.readers != readers
            if stale or current.status is LabelStatus.IN_CLEAR:
                sealed = self._seal_device_label(current.text, device.device, owner)
                self.send("devices.relabel", RelabelArgs(device.device, sealed))
                done.append(device.device)
        return done

    def _seal_device_label(self, label: str, device: bytes, patient: bytes) -> bytes:
        readers = self._reader_keys({patient, *self.guardians_of(patient)})
        return seal_label(label, device, readers)

    def add_guardian(self, guardian: bytes) -> Receipt:
        """Patient: let `guardian` manage this patient's devices (not read records): give
        it the `devices` scope, beside any it holds as proxy (a new proxy is a carer)."""
        held = self._proxy(guardian)
        scopes = {ProxyScope.DEVICES, *(held.scopes if held else ())}
        relation = held.relation if held else ProxyRelation.CARER
        args = AddProxyArgs(
            guardian, relation, tuple(sorted(scopes)), held.expires_ms if held else 0
        )
        return self.send("proxies.add", args)

    def remove_guardian(self, guardian: bytes) -> Receipt:
        """Patient: take the `devices` scope from `guardian`; a proxy with no other
        scope is removed."""
        held = self._proxy(guardian)
        if held is None or ProxyScope.DEVICES not in held.scopes:
            raise NotAProxy(
                f"{format_address(guardian)} is not a guardian of {format_address(self.address)}"
            )
        rest = tuple(s for s in held.scopes if s is not ProxyScope.DEVICES)
        if not rest:
            return self.send("proxies.remove", RemoveProxyArgs(guardian))
        return self.send(
            "proxies.add", AddProxyArgs(guardian, held.relation, rest, held.expires_ms)
        )

    def _proxy(self, proxy: bytes) -> Proxy | None:
        """This patient's proxy relation with `proxy`, if any."""
        return next((p for p in self.chain.proxies_of(self.address) if p.proxy == proxy), None)

    def share_vitals(self, reader: bytes) -> Receipt:
        """Patient: gateways seal this patient's device readings for `reader` too, from
        the next batch they commit on (readings committed before stay closed to them)."""
        return self.send("devices.share_vitals", VitalsReaderArgs(reader))

    def unshare_vitals(self, reader: bytes) -> Receipt:
        """Patient: stop sealing readings for `reader` from the next batch on (what was
        sealed for them before stays readable to them)."""
        return self.send("devices.unshare_vitals", VitalsReaderArgs(reader))

    def vitals_readers_of(self, patient: bytes | None = None) -> tuple[bytes, ...]:
        """Who the patient (by default this account) shares their vitals with."""
        return self.chain.vitals_readers_of(self.address if patient is None else patient)

    def set_device_state(
        self, device: bytes, state: DeviceState, reason: str, evidence: bytes = b""
    ) -> Receipt:
        """Owner side or hospital: restrict, ban or re-activate a device. The owner side
        never lifts a penalty or a ban; a hospital may, and re-activating clears strikes.
        The reason is kept in clear in the device's audit trail: anyone reads it."""
        return self.send("devices.set_state", SetStateArgs(device, state, reason, evidence))

    def register_gateway(self, gateway_address: bytes, label: str) -> Receipt:
        """Hospital: trust an edge gateway to report offences and commit batches."""
        return self.send("devices.register_gateway", RegisterGatewayArgs(gateway_address, label))

    def revoke_gateway(self, gateway_address: bytes) -> Receipt:
        """The hospital that registered the gateway: revoke it, for good."""
        return self.send("devices.revoke_gateway", RevokeGatewayArgs(gateway_address))

    def report_device(self, device: bytes, offence: DeviceOffence, evidence: bytes) -> Receipt:
        """Gateway: a strike against a device; the same evidence counts once."""
        return self.send("devices.report", ReportArgs(device, offence, evidence))

    def report_devices(
        self, reports: Sequence[tuple[bytes, DeviceOffence, bytes]]
    ) -> list[Receipt | MedchainError]:
        """Gateway: several strikes (device, offence, evidence) submitted together with
        successive nonces; per strike its receipt or the error that refused it."""
        if not reports:
            return []
        nonce = self.chain.account(self.address).nonce
        txs = [
            self.build("devices.report", ReportArgs(d, o, e), nonce=nonce + i)
            for i, (d, o, e) in enumerate(reports)
        ]
        return self.chain.submit_many(txs)

    def commit_batch(self, root: bytes, count: int, bundles: Iterable[Bundle]) -> bytes:
        """Gateway: commit a batch of readings (Merkle root, count, one bundle per
        patient and UTC day, sorted here); returns the batch id, which the chain derives
        from the transaction's nonce."""
        nonce = self.chain.account(self.address).nonce
        ordered = tuple(sorted(bundles, key=lambda b: (b.patient, b.day)))
        args = CommitBatchArgs(root, count, ordered)
        self.chain.submit(self.build("devices.commit_batch", args, nonce=nonce))
        return new_batch_id(self.address, nonce)

    def device(self, device: bytes) -> Device:
        found = self.chain.device(device)
        if found is None:
            raise UnknownDevice(
                f"no device {format_address(device)} on chain {self.chain.chain_id}; "
                "check the address, or register it with `register_device`"
            )
        return found

    def device_state(self, device: bytes) -> DeviceState:
        """The state in force at the latest height (a penalty restriction lapses)."""
        return self.device(device).state_at(self.chain.height)

    def devices_of(self, patient: bytes | None = None) -> list[Device]:
        """The patient's (by default this account's) devices, in registration order."""
        return self.chain.devices_of(self.address if patient is None else patient)

    def device_audit(self, device: bytes) -> list[DeviceAuditEntry]:
        self.device(device)
        return self.chain.device_audit(device)

    def guardians_of(self, patient: bytes | None = None) -> tuple[bytes, ...]:
        return self.chain.guardians_of(self.address if patient is None else patient)

    def gateway(self, address: bytes) -> Gateway:
        found = self.chain.gateway(address)
        if found is None:
            raise UnknownGateway(
                f"no gateway {format_address(address)} on chain {self.chain.chain_id}; "
                "a hospital registers it with `register_gateway`"
            )
        return found

    def batch(self, batch_id: bytes) -> Batch:
        found = self.chain.batch(batch_id)
        if found is None:
            raise UnknownBatch(f"no batch {batch_id.hex()} on this chain; check the id")
        return found

    # -- tokens and staking ---------------------------------------------------------

    def transfer(self, to: bytes, amount: int, memo: str = "") -> Receipt:
        return self.send("accounts.transfer", TransferArgs(to, amount, memo))

    def stake(self, amount: int) -> Receipt:
        return self.send("staking.stake", AmountArgs(amount))

    def unstake(self, amount: int) -> Receipt:
        return self.send("staking.unstake", AmountArgs(amount))

    def withdraw(self) -> Receipt:
        return self.send("staking.withdraw", NoArgs())

    def declare_candidate(self) -> Receipt:
        return self.send("staking.declare_candidate", NoArgs())

    def vote(self, candidate: bytes, amount: int) -> Receipt:
        return self.send("staking.vote", VoteArgs(candidate, amount))

    def unvote(self, candidate: bytes, amount: int) -> Receipt:
        return self.send("staking.unvote", VoteArgs(candidate, amount))


@dataclass(frozen=True, slots=True)
class _SealedProfile:
    wrapped_key: bytes
    ciphertext: bytes


def _unknown_record(record_id: bytes) -> MedchainError:
    from medchain.app import UnknownRecord

    return UnknownRecord(f"no record {record_id.hex()} on this chain; check the id")
