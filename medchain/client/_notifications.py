"""What a patient (or their proxy) should know happened to their data, read from the
chain: records written for them by others, proxies they named, and every break-glass
on their emergency set with each organisation's answer. The CLI prints it; the web
app shows it."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app import AuditAction
from medchain.client._backend import ChainBackend
from medchain.client._emergency import EmergencyChain

RECORD_CREATED = "record.created"
RECORD_VERSIONED = "record.versioned"
PROXY_ADDED = "proxy.added"
EMERGENCY_OPENED = "emergency.opened"
EMERGENCY_ANSWERED = "emergency.answered"


@dataclass(frozen=True, slots=True)
class Notice:
    height: int
    kind: str
    """One of RECORD_CREATED, RECORD_VERSIONED, PROXY_ADDED, EMERGENCY_OPENED,
    EMERGENCY_ANSWERED."""
    actor: bytes
    """Who did it: the writer, the proxy named, the clinician who broke the glass (the
    answering organisation's account for an answer)."""
    subject: bytes
    """The record's id, the emergency request's id; empty for a proxy."""
    detail: str
    """The record's FHIR type; the proxy's relation ("carer"); the reason given for a
    break-glass; the organisation's answer."""
    scopes: tuple[str, ...] = ()
    """What a proxy may do for the patient ("records", "devices", ...)."""
    org_id: str = ""
    """The organisation of a break-glass and of its answer."""
    by_proxy: bool = False
    """The writer acted as the patient's proxy."""


def _record_notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    """A record (or a version) someone else wrote for the patient."""
    kinds = {AuditAction.CREATED: RECORD_CREATED, AuditAction.VERSIONED: RECORD_VERSIONED}
    notices = []
    for record_id in chain.patient_records(patient):
        record = chain.record(record_id)
        resource = record.resource_type if record is not None else "record"
        for entry in chain.audit(record_id):
            if entry.actor == patient or entry.action not in kinds:
                continue
            notices.append(
                Notice(
                    entry.height,
                    kinds[entry.action],
                    entry.actor,
                    record_id,
                    resource,
                    by_proxy=bool(entry.on_behalf),
                )
            )
    return notices


def _proxy_notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    return [
        Notice(
            p.added_height,
            PROXY_ADDED,
            p.proxy,
            b"",
            p.relation.value,
            scopes=tuple(s.value for s in p.scopes),
        )
        for p in chain.proxies_of(patient)
    ]


def _emergency_notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    """Every break-glass opening of the patient's set and every answer to one."""
    if not isinstance(chain, EmergencyChain):
        return []
    return [
        Notice(
            note.height,
            EMERGENCY_OPENED if note.kind == EMERGENCY_OPENED else EMERGENCY_ANSWERED,
            note.actor,
            note.request_id,
            note.detail,
            org_id=note.org_id,
        )
        for note in chain.notifications_of(patient)
    ]


def notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    """The patient's feed, oldest first (in the order the chain lists each kind)."""
    found = [
        *_record_notices(chain, patient),
        *_proxy_notices(chain, patient),
        *_emergency_notices(chain, patient),
    ]
    return sorted(found, key=lambda n: n.height)
