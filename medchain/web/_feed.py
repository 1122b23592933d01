"""What happened to a patient's data, in words: their notices (records others wrote
for them, proxies named, break-glass openings and answers; the client's `notices`)
and the accounting of disclosures (who read what, when, through which node, for which
purpose; the SDK's `disclosures`, each node's log checked against its commitments)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from medchain.app import PurposeOfUse
from medchain.client import (
    EMERGENCY_OPENED,
    PROXY_ADDED,
    RECORD_CREATED,
    RECORD_VERSIONED,
    MedchainClient,
    NodeDisclosures,
    Notice,
    all_entries,
    notices,
)
from medchain.crypto import format_address
from medchain.web._records import name_of

_PURPOSES = {
    PurposeOfUse.TREATMENT.value: "treatment",
    PurposeOfUse.EMERGENCY_TREATMENT.value: "emergency treatment",
    PurposeOfUse.CARE_MANAGEMENT.value: "care management",
    PurposeOfUse.PAYMENT.value: "payment",
    PurposeOfUse.OPERATIONS.value: "operations",
    PurposeOfUse.RESEARCH.value: "research",
    PurposeOfUse.PATIENT_REQUEST.value: "the patient's own request",
}


@dataclass(frozen=True)
class NoticeRow:
    height: int
    text: str
    link: str
    """The record's page, for a record notice; '' otherwise."""
    alarm: bool
    """A break-glass opening: shown so that it stands out."""


def _notice_row(client: MedchainClient, notice: Notice) -> NoticeRow:
    who = name_of(client, notice.actor)
    if notice.kind in (RECORD_CREATED, RECORD_VERSIONED):
        what = "A new record" if notice.kind == RECORD_CREATED else "A new version of a record"
        by = who + (", as your proxy" if notice.by_proxy else "")
        text = f"{what} ({notice.detail}) written by {by}"
        return NoticeRow(notice.height, text, f"/records/{notice.subject.hex()}", False)
    if notice.kind == PROXY_ADDED:
        text = f"{who} became a proxy ({notice.detail}: {', '.join(notice.scopes)})"
        return NoticeRow(notice.height, text, "", False)
    if notice.kind == EMERGENCY_OPENED:
        text = (
            f"Emergency access: {who} ({notice.org_id}) asked to open your records: {notice.detail}"
        )
        return NoticeRow(notice.height, text, "", True)
    return NoticeRow(
        notice.height, f"Emergency access: {notice.org_id} answered ({notice.detail})", "", False
    )


def notice_rows(client: MedchainClient, patient: bytes) -> list[NoticeRow]:
    """The patient's notices, newest first."""
    return [_notice_row(client, n) for n in reversed(notices(client.chain, patient))]


@dataclass(frozen=True)
class DisclosureRow:
    when: str
    reader: str
    what: str
    node: str
    purpose: str


@dataclass(frozen=True)
class NodeState:
    node: str
    text: str
    trusted: bool


@dataclass(frozen=True)
class Disclosures:
    rows: tuple[DisclosureRow, ...]
    nodes: tuple[NodeState, ...]


def _node_state(report: NodeDisclosures) -> NodeState:
    node = format_address(report.node)
    if report.error:
        return NodeState(node, f"could not be asked: {report.error}", False)
    if report.disagreement:
        text = f"its log disagrees with what it committed from entry {report.disagreement}"
        return NodeState(node, text, False)
    return NodeState(node, f"{len(report.entries)} reads, checked against its commitments", True)


def disclosure_rows(client: MedchainClient, reports: list[NodeDisclosures]) -> Disclosures:
    """Every read of every node, newest first, and how far each node's log holds up."""
    rows = []
    for report, seen in all_entries(reports):
        read = seen.read
        what = f"record {read.record_id.hex()[:8]}…" if read.record_id else read.kind.value
        if read.version:
            what += f" (version {read.version})"
        reader = "you" if read.reader == client.address else name_of(client, read.reader)
        rows.append(
            DisclosureRow(
                datetime.fromtimestamp(read.time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                reader,
                what,
                format_address(report.node),
                _PURPOSES.get(read.purpose, read.purpose),
            )
        )
    return Disclosures(tuple(reversed(rows)), tuple(_node_state(r) for r in reports))
