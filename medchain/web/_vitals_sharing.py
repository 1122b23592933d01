"""Who a patient shares their vitals with, as the sharing page shows them, and the
people they may share with, found by name in the same directory as a record's grants
(credentialed clinicians and member organisations). Gateways seal each batch for the
readers of its commit, so a reader added reads what is committed from then on."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app import MAX_VITALS_READERS
from medchain.client import MedchainClient
from medchain.crypto import format_address
from medchain.web._records import Party, directory, name_of, role_of


@dataclass(frozen=True)
class VitalsSharing:
    readers: tuple[Party, ...]
    query: str
    matches: tuple[Party, ...]
    """The directory's matches for `query` that do not read the vitals yet."""
    limit: int = MAX_VITALS_READERS


def vitals_sharing(client: MedchainClient, patient: bytes, query: str) -> VitalsSharing:
    """`patient`'s vitals readers by name, and the directory's matches for `query`."""
    readers = tuple(
        Party(name_of(client, r), format_address(r), role_of(client, r))
        for r in client.vitals_readers_of(patient)
    )
    reading = {r.address for r in readers}
    found = directory(client, query) if query.strip() else []
    matches = tuple(p for p in found if p.address not in reading)
    return VitalsSharing(readers, query, matches)
