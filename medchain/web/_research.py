"""A research organisation's holdings as its pages show them: the de-identified copies
patients shared with it (decrypted here by the SDK's `research_data`), counted by FHIR
type and rendered like any record, and the same copies as a FHIR NDJSON export, each
line the resource `medchain.fhir` exports over Bulk Data."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from medchain.client import MedchainClient, ResearchItem
from medchain.fhir import research_resource
from medchain.web._render import RecordView, render

PAGE_SIZE = 20


@dataclass(frozen=True)
class ResearchCopy:
    record_id: str
    source_version: int
    granted_height: int
    view: RecordView


@dataclass(frozen=True)
class Holdings:
    counts: tuple[tuple[str, int], ...]
    """(FHIR type, how many copies of it), by type name."""
    copies: tuple[ResearchCopy, ...]
    page: int
    pages: int
    total: int


def _newest_first(items: list[ResearchItem]) -> list[ResearchItem]:
    return sorted(items, key=lambda i: (-i.entry.granted_height, i.entry.record_id))


def holdings(client: MedchainClient, page: int, page_size: int = PAGE_SIZE) -> Holdings:
    """Page `page` (from 1) of the copies this institution holds, newest grant first,
    with the counts by type over all of them."""
    items = _newest_first(client.research_data())
    counts = Counter(str(item.resource.get("resourceType") or "Resource") for item in items)
    pages = max(1, -(-len(items) // page_size))
    page = min(max(page, 1), pages)
    chosen = items[(page - 1) * page_size : page * page_size]
    copies = tuple(
        ResearchCopy(
            item.entry.record_id.hex(),
            item.entry.source_version,
            item.entry.granted_height,
            render(item.resource),
        )
        for item in chosen
    )
    return Holdings(tuple(sorted(counts.items())), copies, page, pages, len(items))


def export_ndjson(client: MedchainClient) -> str:
    """Every copy as FHIR NDJSON, grouped by type then record id (one resource a line,
    each valid FHIR R4 under its record id and source version)."""
    resources = [research_resource(item) for item in client.research_data()]
    resources.sort(key=lambda r: (str(r["resourceType"]), str(r["id"])))
    return "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in resources)
