"""A record's research copies as its page shows them: which research organisations
hold a de-identified copy, since when, and which others the patient may share with.

Who holds a copy is read from the record's audit trail, which the chain keeps public:
every path that gives or takes a copy writes to it (a grant, a revoke, an unwarrant,
an erasure, which drops them all), as the erasure contract itself relies on. An
institution's own list of copies is read by that institution only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from medchain.app import AuditAction, AuditEntry, OrgKind
from medchain.client import MedchainClient
from medchain.crypto import format_address
from medchain.web._records import Party, directory, may_change_readers, name_of

RESEARCH_KINDS = (OrgKind.RESEARCH,)


@dataclass(frozen=True)
class ResearchHolder:
    name: str
    address: str
    shared: str
    """When the copy was made, in words: block height and block time (UTC)."""


@dataclass(frozen=True)
class ResearchShares:
    may_share: bool
    """This account may give and withdraw copies: the owner, or a `grant` proxy."""
    holders: tuple[ResearchHolder, ...]
    query: str
    matches: tuple[Party, ...]
    """Research organisations matching `query` that hold no copy yet."""


def copies_held(client: MedchainClient, record_id: bytes) -> dict[bytes, AuditEntry]:
    """Each institution holding a copy of the record, with the audit entry of its
    grant: the trail replayed in order (a revoke drops one, an erasure all)."""
    held: dict[bytes, AuditEntry] = {}
    for entry in client.chain.audit(record_id):
        if entry.action is AuditAction.RESEARCH_GRANTED:
            held[entry.subject] = entry
        elif entry.action is AuditAction.RESEARCH_REVOKED:
            held.pop(entry.subject, None)
        elif entry.action is AuditAction.ERASED:
            held.clear()
    return held


def _holder(client: MedchainClient, names: dict[bytes, str], entry: AuditEntry) -> ResearchHolder:
    when = datetime.fromtimestamp(entry.time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    name = names.get(entry.subject) or name_of(client, entry.subject)
    return ResearchHolder(name, format_address(entry.subject), f"at block {entry.height}, {when}")


def research_shares(
    client: MedchainClient, record_id: bytes, query: str, now_ms: int
) -> ResearchShares:
    """The record's research copies for its page; nothing for an account that may not
    change them (a reader sees the record, not whom its patient shares it with)."""
    record = client.record(record_id)
    if not may_change_readers(client, record, now_ms):
        return ResearchShares(False, (), query, ())
    names = {org.account: org.name for org in client.chain.organisations()}
    held = copies_held(client, record_id)
    holders = sorted(
        (_holder(client, names, entry) for entry in held.values()),
        key=lambda h: (h.name.casefold(), h.address),
    )
    addresses = {h.address for h in holders}
    found = directory(client, query, RESEARCH_KINDS) if query.strip() else []
    matches = tuple(p for p in found if p.address not in addresses)
    return ResearchShares(True, tuple(holders), query, matches)
