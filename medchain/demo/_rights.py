"""The story's scenes about the patient's rights: consent with a purpose and an expiry,
a standing consent for her GP (exported as a FHIR Consent), erasure of a record,
and recovery of a lost key file with guardians."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from medchain.app import PurposeOfUse, RecordErased, Role
from medchain.client import (
    ChainBackend,
    MedchainClient,
    NodeDisclosures,
    NotAReader,
    all_entries,
    consent_from_fhir,
    consent_to_fhir,
    grant_args_of,
)
from medchain.demo._narration import Story
from medchain.types import TxFailed

Resource = Callable[[int, str], dict[str, Any]]
"""A FHIR resource of the story, from a value and a time."""

_CLOCK_MARGIN_MS = 1_000
_LONGEST_DEMO_WAIT_S = 90
"""The longest recovery waiting period the demo sits through; a chain that asks for
more (a consortium's default is a day) shows the recovery up to the wait."""


def consent_scene(
    story: Story,
    alice: MedchainClient,
    bob: MedchainClient,
    carol: MedchainClient,
    resource: Resource,
) -> bytes:
    """Alice grants for a purpose until an expiry, then gives her GP (Dr. Carol) a
    standing consent for every Observation, which a third party's new record follows."""
    story.section("Consent: a purpose, an expiry, and a standing consent for the GP")
    record_id = bob.put_record(alice.address, resource(66, "2026-11-22T08:00:00+01:00"))
    chain = alice.chain
    soon = chain.latest_block().header.time_ms + 3_000
    alice.grant(record_id, carol.address, [PurposeOfUse.CARE_MANAGEMENT], soon)
    (terms,) = [g for g in alice.reader_grants(record_id) if g.reader == carol.address]
    story.check(
        "Dr. Carol's grant names its purpose (care management) and ends in 3 s",
        terms.purposes == (PurposeOfUse.CARE_MANAGEMENT,) and terms.expires_ms == soon,
    )
    _wait_until(soon)
    bob.add_version(record_id, resource(70, "2026-11-22T09:00:00+01:00"))
    story.refused(
        "after the expiry, the next version is not wrapped for Dr. Carol",
        lambda: carol.read_record(record_id, version=2),
        NotAReader,
    )
    granted = alice.grant_consent(carol.address, ["Observation"], purposes=[PurposeOfUse.TREATMENT])
    story.check(
        "a standing consent for every Observation re-wraps Alice's past ones for Dr. Carol",
        record_id in granted.rewrapped
        and carol.read_record(record_id)["resourceType"] == "Observation",
    )
    later = bob.put_record(alice.address, resource(64, "2026-11-23T08:00:00+01:00"))
    story.check(
        "Dr. Bob's new Observation is readable by Dr. Carol: his client wrapped it for her",
        carol.read_record(later)["valueQuantity"]["value"] == 64,
    )
    fhir = consent_to_fhir(granted.consent)
    story.console.print(f"  [dim]as a FHIR R4 Consent: {json.dumps(fhir)[:160]}…[/]")
    story.check(
        "the FHIR Consent reads back as the same consent",
        consent_from_fhir(fhir) == grant_args_of(granted.consent),
    )
    return later


def disclosures_scene(
    story: Story, alice: MedchainClient, carol: MedchainClient, record_id: bytes
) -> None:
    """Alice asks every node who read her records, and checks each node's log against
    the head it committed on chain."""
    story.section("Accounting of disclosures: who read Alice's records")
    if not isinstance(getattr(alice.chain, "url", None), str):
        story.note(
            "an in-process chain serves no reads through a node's API, so it keeps no "
            "disclosure log: `medchain demo` on a devnet shows this scene"
        )
        return
    carol.read_record(record_id)
    reports = _committed_disclosures(alice)
    if not reports:
        story.note(
            "no node of this network commits a disclosure log to the chain (a node "
            "without a data directory keeps none): a devnet's nodes do"
        )
        return
    reads = [e.read for _, e in all_entries(reports) if e.read.reader == carol.address]
    story.check(
        "Dr. Carol's reads of the GP-consented record are listed, each with its purpose",
        any(r.record_id == record_id for r in reads) and all(r.purpose for r in reads),
    )
    served = ", ".join(f"{r.api_url}: {len(r.entries)}" for r in reports)
    story.console.print(f"  [dim]reads of Alice's data logged per node: {served}[/]")
    story.check(
        "every node's log matches the heads it committed on chain",
        all(r.verified for r in reports),
    )


def _committed_disclosures(alice: MedchainClient) -> list[NodeDisclosures]:
    """The nodes' reports once each node committed every entry it shows (nodes commit
    their log's head every few seconds)."""
    deadline = time.monotonic() + _LONGEST_DEMO_WAIT_S
    while True:
        reports = alice.disclosures()
        if all(r.uncommitted == 0 for r in reports) or time.monotonic() > deadline:
            return reports
        time.sleep(1)


def erasure_scene(
    story: Story,
    alice: MedchainClient,
    bob: MedchainClient,
    resource: Resource,
    peers: list[tuple[str, ChainBackend]],
) -> None:
    """Alice erases a record: its ciphertext leaves every node and reads fail clearly."""
    story.section("Erasure: Alice erases a record")
    record_id = bob.put_record(alice.address, resource(99, "2026-11-24T08:00:00+01:00"))
    version = alice.chain.record_version(record_id, 1)
    assert version is not None
    receipt = alice.erase(record_id, "recorded for the wrong patient")
    story.check("the erasure is on chain", receipt.ok)
    record = alice.record(record_id)
    story.check(
        "the record shows as erased, by Alice, and nobody is left to read it",
        record.erased_by == alice.address and record.readers == (),
    )
    story.refused(
        "Dr. Bob's read now fails: the record was erased",
        lambda: bob.read_record(record_id),
        RecordErased,
    )
    for name, peer in [("the node it was sent to", alice.chain), *peers]:
        story.check(f"{name} no longer holds the ciphertext", not _holds(peer, version.cid))


def _holds(chain: ChainBackend, cid: str) -> bool:
    """Whether the node still holds the blob (one that knows of the erasure says so)."""
    try:
        return chain.blobs.has(cid)
    except RecordErased:
        return False


def recovery_scene(
    story: Story,
    patient: MedchainClient,
    guardians: list[MedchainClient],
    stranger: MedchainClient,
    fresh: MedchainClient,
    resource: Resource,
) -> None:
    """Dana names three guardians (two doctors and her hospital) of whom two must agree,
    loses her key file, and gets her account and her old records back; a stranger's
    attempt to take her account is cancelled by her key."""
    story.section("Key recovery: Dana loses her key file; two of three guardians restore it")
    chain = patient.chain
    patient.register(Role.PATIENT, "Dana Roux")
    record_id = guardians[0].put_record(patient.address, resource(58, "2026-11-25T08:00:00+01:00"))
    delay = chain.params.recovery_min_delay_ms
    patient.set_up_recovery([g.address for g in guardians], threshold=2, delay_ms=delay)
    story.check(
        "her recovery policy names 3 guardians and a threshold of 2",
        (policy := patient.recovery_policy()) is not None and policy.threshold == 2,
    )
    hijack = stranger.request_recovery(patient.address)
    patient.cancel_recovery(hijack)
    story.check(
        "a stranger's recovery request is cancelled by Dana's current key",
        patient.recovery_requests()[-1].status.value == "cancelled",
    )
    address = patient.address
    del patient  # her key file is lost: `fresh` holds the one she makes now
    request_id = fresh.request_recovery(address)
    guardians[0].approve_recovery(request_id)
    story.refused(
        "one guardian is not enough to complete",
        lambda: fresh.complete_recovery(request_id),
        TxFailed,
        code="recovery_not_ready",
    )
    guardians[1].approve_recovery(request_id)
    if delay > _LONGEST_DEMO_WAIT_S * 1_000:
        story.note(
            f"this chain's waiting period is {delay // 1000} s: complete the recovery later "
            "with `medchain recovery complete`"
        )
        return
    request = next(r for r in fresh.recovery_requests(address) if r.request_id == request_id)
    _wait_until(request.ready_ms)
    fresh.complete_recovery(request_id)
    story.check(
        "after the waiting period, the new key signs for Dana's same address",
        fresh.address == address and chain.identity(address).public_key == fresh.keys.public_key,  # type: ignore[union-attr]
    )
    story.check(
        "and Dana reads her old record again",
        fresh.read_record(record_id)["valueQuantity"]["value"] == 58,
    )


def _wait_until(time_ms: int) -> None:
    """Sleep until the clock passes `time_ms` with a second to spare: the next block
    (dated by its proposer's clock, on this machine) is then dated after it."""
    left_s = (time_ms + _CLOCK_MARGIN_MS) / 1_000 - time.time()
    if left_s > 0:
        time.sleep(left_s)
