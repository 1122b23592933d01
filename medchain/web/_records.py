"""A person's records as the app's pages show them: decrypted by the SDK in this process
(the browser gets the rendered page, never a key), a page at a time; who reads a
record; and the directory of credentialed clinicians and organisations to grant to."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from medchain.app import CredentialStatus, OrgKind, ProxyScope, Record, Role
from medchain.client import MedchainClient, NotAReader, proxies_of
from medchain.crypto import format_address
from medchain.types import MedchainError
from medchain.web._render import RecordView, render

PAGE_SIZE = 20
DIRECTORY_LIMIT = 50


@dataclass(frozen=True)
class TimelineEntry:
    record_id: str
    author: str
    height: int
    view: RecordView | None
    """None: this account may not read the record (or it was erased)."""
    note: str = ""


@dataclass(frozen=True)
class Timeline:
    entries: tuple[TimelineEntry, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Party:
    name: str
    address: str
    what: str
    """Role and organisation, in words."""


def name_of(client: MedchainClient, address: bytes) -> str:
    """The public name of `address`: its registered name, else the name an organisation
    vouches for in an active credential, else the address (a patient's name is sealed
    to the patient)."""
    identity = client.chain.identity(address)
    if identity is not None and identity.name:
        return identity.name
    for credential in client.chain.credentials_of(address):
        if credential.status is CredentialStatus.ACTIVE and credential.name:
            return credential.name
    return format_address(address)


def _entry(client: MedchainClient, record_id: bytes) -> TimelineEntry:
    record = client.record(record_id)
    author = name_of(client, record.author)
    try:
        view: RecordView | None = render(client.read_record(record_id))
        note = ""
    except NotAReader:
        view, note = None, "not shared with you"
    except MedchainError as exc:
        view, note = None, exc.message
    return TimelineEntry(record_id.hex(), author, record.created_height, view, note)


def timeline(
    client: MedchainClient, patient: bytes, page: int, page_size: int = PAGE_SIZE
) -> Timeline:
    """Page `page` (from 1) of the patient's records, newest first; only that page's
    records are fetched and decrypted."""
    ids = list(reversed(client.chain.patient_records(patient)))
    pages = max(1, -(-len(ids) // page_size))
    page = min(max(page, 1), pages)
    chosen = ids[(page - 1) * page_size : page * page_size]
    return Timeline(tuple(_entry(client, rid) for rid in chosen), page, pages, len(ids))


@dataclass(frozen=True)
class RecordPage:
    record_id: str
    patient: str
    patient_name: str
    author: str
    versions: int
    view: RecordView | None
    raw: dict[str, Any] | None
    note: str
    readers: tuple[Party, ...]
    owned: bool
    """This account is the record's patient."""
    manages: bool
    """This account may grant and revoke readers: the owner, or a `grant` proxy."""


def may_change_readers(client: MedchainClient, record: Record, now_ms: int) -> bool:
    """The chain lets the owner or their current `grant` proxy change who reads a
    record and who holds a research copy; an erased record has nothing left to share."""
    if record.erased_height:
        return False
    if record.owner == client.address:
        return True
    return any(
        p.proxy == client.address and ProxyScope.GRANT in p.scopes and p.active(now_ms)
        for p in proxies_of(client, record.owner)
    )


def record_page(client: MedchainClient, record_id: bytes, now_ms: int) -> RecordPage:
    """The record as its page shows it; `now_ms` judges whether a proxy has expired."""
    record = client.record(record_id)
    try:
        raw: dict[str, Any] | None = client.read_record(record_id)
        note = ""
    except NotAReader:
        raw, note = None, "This record is not shared with you."
    readers = tuple(
        Party(name_of(client, reader), format_address(reader), role_of(client, reader))
        for reader in record.readers
    )
    return RecordPage(
        record_id=record_id.hex(),
        patient=format_address(record.owner),
        patient_name="you" if record.owner == client.address else name_of(client, record.owner),
        author=name_of(client, record.author),
        versions=record.version_count,
        view=None if raw is None else render(raw),
        raw=raw,
        note=note,
        readers=readers,
        owned=record.owner == client.address,
        manages=may_change_readers(client, record, now_ms),
    )


def role_of(client: MedchainClient, address: bytes) -> str:
    """What `address` is, in words: its active credential's role and organisation (a
    clinician registers as a patient), else its registered role."""
    for credential in client.chain.credentials_of(address):
        if credential.status is CredentialStatus.ACTIVE:
            return f"{credential.role.value}, {credential.org_id}"
    identity = client.chain.identity(address)
    return "" if identity is None else identity.role.value


def directory(client: MedchainClient, query: str, kinds: Collection[OrgKind] = ()) -> list[Party]:
    """Credentialed clinicians (active credentials) and member organisations whose
    name or organisation contains `query` (any case), by name; with `kinds`, only the
    organisations of those kinds (a research copy goes to the organisation, not staff)."""
    wanted = query.strip().casefold()
    found: dict[str, Party] = {}
    for org in client.chain.organisations():
        if not org.member or (kinds and org.kind not in kinds):
            continue
        if wanted in org.name.casefold() or wanted in org.org_id.casefold():
            address = format_address(org.account)
            found[address] = Party(org.name, address, f"organisation ({org.kind.value})")
        if kinds:
            continue
        for credential in client.chain.staff_of(org.org_id):
            if credential.status is not CredentialStatus.ACTIVE:
                continue
            if wanted in credential.name.casefold() or wanted in org.name.casefold():
                address = format_address(credential.subject)
                found[address] = Party(
                    credential.name, address, f"{credential.role.value}, {org.name}"
                )
    return sorted(found.values(), key=lambda p: p.name.casefold())[:DIRECTORY_LIMIT]


def patients(client: MedchainClient, query: str) -> list[Party]:
    """Registered accounts whose address contains `query` (a patient's name is sealed to
    the patient: a clinician finds them by the address they give)."""
    wanted = query.strip().casefold()
    found = []
    for index in range(client.chain.role_count(Role.PATIENT)):
        address = client.chain.role_member(Role.PATIENT, index)
        text = "" if address is None else format_address(address)
        if address is not None and wanted in text and address != client.address:
            found.append(Party(name_of(client, address), text, "patient"))
        if len(found) >= DIRECTORY_LIMIT:
            break
    return found
