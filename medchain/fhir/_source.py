"""One account's view of the chain as FHIR resources: what the REST facade serves.

`AccountSource` keeps a `ResourceIndex` of the latest version of every record the
account may read, decrypted: its own as a patient from the start; a patient's, for a
clinician or proxy, from the first search or read that names that patient. Whenever
the chain height has moved, a patient's records are listed again and only versions not
yet indexed are decrypted. Reads of one version and of a record's history go to the
chain. Writes go through the SDK, which seals for the readers the chain requires."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from medchain.app import AuditAction, Record, Role
from medchain.client import (
    InvalidFhirResource,
    MedchainClient,
    NotAReader,
    UnknownParty,
    validate_resource,
)
from medchain.fhir._convert import (
    CONSENT,
    PATIENT,
    PATIENT_ELEMENT,
    RECORD_TYPES,
    consent_resource,
    for_chain,
    patient_fhir_id,
    patient_of_reference,
    patient_resource,
    record_fhir_id,
    record_id_of,
    record_resource,
    subject_of,
)
from medchain.fhir._index import IndexedResource, ResourceIndex, SearchPage
from medchain.fhir._outcome import (
    FhirError,
    fhir_error,
    forbidden,
    gone,
    invalid_resource,
    not_found,
)
from medchain.fhir._search import SearchQuery
from medchain.fhir._vitals_feed import VitalsFeed, is_vitals_id
from medchain.gateway import CheckedBundles
from medchain.types import MedchainError

_VERSION_ACTIONS = (AuditAction.CREATED, AuditAction.VERSIONED)
T = TypeVar("T")


class AccountSource:
    """The records one account may read, as FHIR, kept in step with the chain. Thread
    safe: one lock around the client, which numbers its transactions itself."""

    def __init__(
        self,
        client: MedchainClient,
        index: ResourceIndex | None = None,
        checked: CheckedBundles | None = None,
    ) -> None:
        self.client = client
        self.index = index if index is not None else ResourceIndex()
        self._lock = threading.RLock()
        self._synced: dict[bytes, int] = {}
        """Per patient synced: the chain height of the last sync."""
        self._versions: dict[bytes, int] = {}
        """Per record indexed: the version indexed."""
        self._vitals = VitalsFeed(client, checked)
        """`checked`: the vitals bundles already checked (a new memory if None)."""

    @property
    def address(self) -> bytes:
        return self.client.address

    @property
    def is_patient(self) -> bool:
        identity = self.client.chain.identity(self.address)
        return identity is not None and identity.role is Role.PATIENT

    # -- keeping the index in step ----------------------------------------------------

    def sync(self, patient: bytes) -> None:
        """Bring `patient`'s records into the index if the chain moved since last time."""
        with self._lock:
            height = self.client.chain.height
            if self._synced.get(patient) == height:
                return
            for record_id in self.client.chain.patient_records(patient):
                record = self.client.chain.record(record_id)
                if record is not None:
                    self._sync_record(record)
            if patient == self.address:
                self._sync_own()
            for observation in self._vitals.fetch(patient):
                self.index.put(observation)
            self._synced[patient] = height

    def _sync_record(self, record: Record) -> None:
        fhir_id = record_fhir_id(record.record_id)
        readable = record.owner == self.address or self.address in record.readers
        if record.erased_height or not readable:
            self.index.remove(record.resource_type, fhir_id)
            self._versions.pop(record.record_id, None)
            return
        if self._versions.get(record.record_id) == record.version_count:
            return
        try:
            opened = self._opened(record, record.version_count, self._version_times(record))
        except NotAReader:
            self.index.remove(record.resource_type, fhir_id)
            return
        self._put(record, *opened)

    def _sync_own(self) -> None:
        """The patient's profile and standing consents, which are not records."""
        if not self.is_patient:
            return
        profile = patient_resource(self.address, self.client.my_profile())
        self.index.put(_indexed(profile, 1, 0, self.address))
        for consent in self.client.chain.consents_of(self.address):
            self.index.put(_indexed(consent_resource(consent), 1, 0, self.address))

    def _put(self, record: Record, resource: dict[str, Any], updated_ms: int) -> None:
        self.index.put(_indexed(resource, record.version_count, updated_ms, record.owner))
        self._versions[record.record_id] = record.version_count

    def _version_times(self, record: Record) -> dict[int, int]:
        """Block time of each version, from the record's public audit trail."""
        return {
            e.version: e.time_ms
            for e in self.client.chain.audit(record.record_id)
            if e.action in _VERSION_ACTIONS
        }

    def _opened(
        self, record: Record, version: int, times: Mapping[int, int]
    ) -> tuple[dict[str, Any], int]:
        """One version decrypted and served as FHIR, and its block time (NotAReader if
        it is not ours to open)."""
        stored = self.client.read_record(record.record_id, version)
        updated_ms = times.get(version, 0)
        return record_resource(stored, record.record_id, version, updated_ms, record.owner), (
            updated_ms
        )

    # -- reads ---------------------------------------------------------------------------

    def read(self, resource_type: str, fhir_id: str) -> dict[str, Any]:
        """The current version: 404 unknown, 410 erased, 403 not ours to read."""
        with self._lock:
            if resource_type in (PATIENT, CONSENT):
                return self._own_resource(resource_type, fhir_id)
            if is_vitals_id(fhir_id):
                return self._vitals_observation(resource_type, fhir_id)
            record = self._record(resource_type, fhir_id)
            self.sync(record.owner)
            found = self.index.get(resource_type, fhir_id)
            if found is None:
                raise forbidden(f"{resource_type}/{fhir_id}")
            return found.resource

    def vread(self, resource_type: str, fhir_id: str, version: int) -> dict[str, Any]:
        with self._lock:
            if is_vitals_id(fhir_id) and version == 1:  # a reading has one version
                return self._vitals_observation(resource_type, fhir_id)
            record = self._record(resource_type, fhir_id)
            if not 1 <= version <= record.version_count:
                raise fhir_error(
                    404,
                    "not-found",
                    f"{resource_type}/{fhir_id} has versions 1 to {record.version_count}",
                )
            try:
                return self._opened(record, version, self._version_times(record))[0]
            except NotAReader:
                raise forbidden(f"version {version} of {resource_type}/{fhir_id}") from None

    def history(self, resource_type: str, fhir_id: str) -> list[dict[str, Any]]:
        """Every version this account may open, newest first (403 if none)."""
        with self._lock:
            if is_vitals_id(fhir_id):
                return [self._vitals_observation(resource_type, fhir_id)]
            record = self._record(resource_type, fhir_id)
            times = self._version_times(record)
            versions = []
            for number in range(record.version_count, 0, -1):
                try:
                    versions.append(self._opened(record, number, times)[0])
                except NotAReader:
                    continue
            if not versions:
                raise forbidden(f"{resource_type}/{fhir_id}")
            return versions

    def _record(self, resource_type: str, fhir_id: str) -> Record:
        record_id = record_id_of(fhir_id)
        record = None if record_id is None else self.client.chain.record(record_id)
        if record is None or record.resource_type != resource_type:
            raise not_found(resource_type, fhir_id)
        if record.erased_height:
            self.index.remove(resource_type, fhir_id)
            raise gone(resource_type, fhir_id)
        return record

    def _vitals_observation(self, resource_type: str, fhir_id: str) -> dict[str, Any]:
        """A vitals reading already fetched (a search naming its patient fetches it)."""
        found = self.index.get(resource_type, fhir_id)
        if found is None:
            raise not_found(resource_type, fhir_id)
        return found.resource

    def _own_resource(self, resource_type: str, fhir_id: str) -> dict[str, Any]:
        """The patient's profile or a consent: only its patient reads them here."""
        self.sync(self.address)
        found = self.index.get(resource_type, fhir_id)
        if found is not None:
            return found.resource
        if resource_type == PATIENT:
            other = patient_of_reference(fhir_id)
            identity = None if other is None else self.client.chain.identity(other)
            if identity is not None and identity.role is Role.PATIENT:
                raise forbidden(f"the profile of {fhir_id}, sealed for its patient only")
        raise not_found(resource_type, fhir_id)

    def search(self, query: SearchQuery) -> SearchPage:
        """Search the index, first bringing in the patient the query names (or, for a
        query naming none, the account's own records)."""
        with self._lock:
            named = patient_of_reference(query.patient) if query.patient else None
            self.sync(named or self.address)
            return self.index.search(query)

    def everything(self, fhir_id: str) -> list[dict[str, Any]]:
        """`Patient/{id}/$everything`: all of the patient's resources this account reads."""
        patient = patient_of_reference(fhir_id)
        if patient is None:
            raise not_found(PATIENT, fhir_id)
        with self._lock:
            self.sync(patient)
            return [item.resource for item in self.index.all_of(fhir_id, None, None)]

    def own_resources(
        self, types: frozenset[str] | None, since_ms: int | None
    ) -> Iterator[dict[str, Any]]:
        """Everything the account owns as a patient (a patient's bulk export)."""
        with self._lock:
            self.sync(self.address)
            items = list(self.index.all_of(patient_fhir_id(self.address), types, since_ms))
        return (item.resource for item in items)

    # -- writes --------------------------------------------------------------------------

    def create(self, resource_type: str, body: bytes | Mapping[str, Any]) -> dict[str, Any]:
        """Validate, then write a new record for the patient the resource's subject names."""
        resource = _valid(body)
        _require_type(resource, resource_type, None)
        _require_record_type(resource_type)
        patient = subject_of(resource)
        if patient is None:
            raise _no_subject(resource_type)
        with self._lock:
            record_id = _chain_write(
                lambda: self.client.put_record(patient, for_chain(resource, patient))
            )
            return self._current(record_id)

    def update(
        self,
        resource_type: str,
        fhir_id: str,
        body: bytes | Mapping[str, Any],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """A new version of an existing record, sealed for its current readers; with
        `expected_version` (If-Match), 412 unless that is still the current one."""
        resource = _valid(body)
        _require_type(resource, resource_type, fhir_id)
        _require_record_type(resource_type)
        with self._lock:
            record = self._record(resource_type, fhir_id)
            if expected_version is not None and expected_version != record.version_count:
                raise fhir_error(
                    412,
                    "conflict",
                    f"{resource_type}/{fhir_id} is at version {record.version_count}, "
                    f"not {expected_version}; read it again and retry",
                )
            _chain_write(
                lambda: self.client.add_version(record.record_id, for_chain(resource, record.owner))
            )
            return self._current(record.record_id)

    def _current(self, record_id: bytes) -> dict[str, Any]:
        record = self.client.record(record_id)
        resource, updated_ms = self._opened(
            record, record.version_count, self._version_times(record)
        )
        self._put(record, resource, updated_ms)
        return resource


def _indexed(
    resource: dict[str, Any], version: int, updated: int, patient: bytes
) -> IndexedResource:
    return IndexedResource(
        resource_type=str(resource["resourceType"]),
        id=str(resource["id"]),
        version=version,
        last_updated_ms=updated,
        patient=patient_fhir_id(patient),
        resource=resource,
    )


def _valid(body: bytes | Mapping[str, Any]) -> dict[str, Any]:
    try:
        return validate_resource(body)
    except InvalidFhirResource as exc:
        raise invalid_resource(exc) from None


def _require_type(resource: Mapping[str, Any], resource_type: str, fhir_id: str | None) -> None:
    """The body is the resource the URL names (an update's id, if it has one, too)."""
    if resource["resourceType"] != resource_type:
        raise fhir_error(
            400,
            "invalid",
            f"the body is a {resource['resourceType']}, but the URL names {resource_type}",
            "resourceType",
        )
    if fhir_id is not None and resource.get("id", fhir_id) != fhir_id:
        raise fhir_error(
            400,
            "invalid",
            f"the body's id must be {fhir_id!r}, as the URL names",
            f"{resource_type}.id",
        )


def _require_record_type(resource_type: str) -> None:
    if resource_type not in RECORD_TYPES:
        raise fhir_error(
            405 if resource_type in (PATIENT, CONSENT) else 400,
            "not-supported",
            f"{resource_type} resources are not written through this server; it writes "
            f"{', '.join(RECORD_TYPES)}",
        )


def _no_subject(resource_type: str) -> FhirError:
    element = PATIENT_ELEMENT[resource_type]
    return fhir_error(
        400,
        "required",
        f"{resource_type}.{element} must reference the patient as Patient/<medchain address>",
        f"{resource_type}.{element}",
    )


def _chain_write(write: Callable[[], T]) -> T:
    """Run an SDK write; the chain's refusal becomes an OperationOutcome."""
    try:
        return write()
    except UnknownParty as exc:
        raise fhir_error(400, "invalid", exc.message) from None
    except NotAReader as exc:
        raise fhir_error(403, "forbidden", exc.message) from None
    except MedchainError as exc:
        raise fhir_error(422, "business-rule", exc.message) from None
