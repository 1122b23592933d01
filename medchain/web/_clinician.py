"""A clinician's view of the chain: the patients whose records they may read, search
over their own encrypted index, and a new version of a record checked before it is
sealed.

The chain keeps no index from a reader to the records it may read, so "my patients" is
what this account can find by itself: the patients it is a proxy for, and the owners of
the records it wrote through this app (each is indexed under `AUTHORED` in the
account's own encrypted search index, which lives on chain and outlasts this run). Any
other patient is found by address."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medchain.client import InvalidFhirResource, MedchainClient, validate_resource
from medchain.crypto import format_address
from medchain.types import MedchainError
from medchain.web._records import Party, name_of
from medchain.web._render import RecordView, concept, render

AUTHORED = "written in the medchain app"
"""The keyword every record this app writes is indexed under, in its author's index."""
MAX_RECORD_BYTES = 64 * 1024


class InvalidUpdate(MedchainError):
    """A new version the app will not seal: not JSON, not FHIR, or another type."""


def keywords_for(resource: Mapping[str, Any]) -> list[str]:
    """What a record the app writes is indexed under: `AUTHORED`, its FHIR type and its
    code in words (the same words the search box takes)."""
    words = [AUTHORED, str(resource.get("resourceType") or "")]
    words.append(concept(resource.get("code")))
    return [w for w in words if w]


def my_patients(client: MedchainClient) -> list[Party]:
    """The patients this account acts for as proxy, then those it wrote records for
    through this app, each once, by name."""
    found: dict[bytes, str] = {}
    for proxy in client.chain.patients_of(client.address):
        found.setdefault(proxy.patient, f"you are their proxy ({proxy.relation.value})")
    for record_id in client.search(AUTHORED).record_ids:
        record = client.chain.record(record_id)
        if record is not None and record.owner != client.address:
            found.setdefault(record.owner, "you wrote records for them")
    parties = [Party(name_of(client, a), format_address(a), why) for a, why in found.items()]
    return sorted(parties, key=lambda p: (p.name.casefold(), p.address))


@dataclass(frozen=True)
class Found:
    record_id: str
    view: RecordView


@dataclass(frozen=True)
class SearchAnswer:
    found: tuple[Found, ...]
    skipped: int
    """Indexed records this account can no longer open (revoked, erased)."""


def search_records(client: MedchainClient, words: str) -> SearchAnswer:
    """The records indexed under `words` in this account's own encrypted index, those
    it may open decrypted and rendered, newest indexed first."""
    result = client.search(words, decrypt=True)
    found = tuple(Found(o.record_id.hex(), render(o.resource)) for o in reversed(result.opened))
    return SearchAnswer(found, len(result.skipped))


def new_version(current: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The posted JSON as the record's next version: valid FHIR R4 of the same type."""
    if len(text.encode("utf-8")) > MAX_RECORD_BYTES:
        raise InvalidUpdate(f"a record is at most {MAX_RECORD_BYTES // 1024} KiB of JSON")
    try:
        resource = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidUpdate(f"that is not JSON ({exc.msg}, line {exc.lineno}); fix it") from None
    try:
        valid = validate_resource(resource)
    except InvalidFhirResource as exc:
        raise InvalidUpdate(exc.message) from None
    if valid["resourceType"] != current.get("resourceType"):
        raise InvalidUpdate(
            f"this record is a {current.get('resourceType')}; a new version keeps its type "
            f"(got {valid['resourceType']})"
        )
    return valid
