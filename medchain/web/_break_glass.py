"""Emergency access as a clinician's pages show it: whether a patient's break-glass is
on, the requests this clinician opened for them, and one request's state: how many of
the member organisations answered, and once enough did, the emergency set decrypted here
and rendered (the SDK's `open_emergency` / `read_emergency_set`)."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app import EmergencyRequest
from medchain.client import (
    EmergencyNotOpen,
    MedchainClient,
    emergency_chain,
    read_emergency_set,
)
from medchain.crypto import format_address
from medchain.gateway import show_time
from medchain.web._clinician import Found
from medchain.web._render import render


@dataclass(frozen=True)
class RequestView:
    request_id: str
    patient: str
    reason: str
    opened_height: int
    expires: str
    answered: tuple[str, ...]
    """The organisations that answered, by id."""
    threshold: int
    records: tuple[Found, ...] | None
    """The emergency set, once `threshold` organisations answered; None before."""
    note: str


@dataclass(frozen=True)
class PatientEmergency:
    available: bool
    """The patient has break-glass on: a clinician may open a request."""
    requests: tuple[RequestView, ...]
    """The requests this clinician opened for the patient, newest first."""


def _view(client: MedchainClient, request: EmergencyRequest, with_records: bool) -> RequestView:
    records: tuple[Found, ...] | None = None
    note = ""
    if with_records:
        try:
            opened = read_emergency_set(client, request.request_id)
            records = tuple(Found(r.record_id.hex(), render(r.resource)) for r in opened)
        except EmergencyNotOpen as exc:
            note = exc.message
    return RequestView(
        request.request_id.hex(),
        format_address(request.patient),
        request.reason,
        request.opened_height,
        show_time(request.expires_ms),
        request.answered,
        request.threshold,
        records,
        note,
    )


def patient_emergency(client: MedchainClient, patient: bytes) -> PatientEmergency:
    chain = emergency_chain(client)
    policy = client.chain.emergency_policy(patient)
    mine = [r for r in chain.emergency_requests_of(patient) if r.clinician == client.address]
    mine.sort(key=lambda r: -r.opened_height)
    views = tuple(_view(client, r, with_records=False) for r in mine)
    return PatientEmergency(policy is not None and policy.enabled, views)


def request_state(client: MedchainClient, request_id: bytes) -> RequestView:
    """One request this clinician opened, its records when they can be read."""
    request = emergency_chain(client).emergency_request(request_id)
    if request is None or request.clinician != client.address:
        raise EmergencyNotOpen(f"no emergency request {request_id.hex()} opened by this account")
    return _view(client, request, with_records=True)
