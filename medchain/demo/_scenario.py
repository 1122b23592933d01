"""The story `medchain demo` tells, written once against the SDK's ChainBackend.

Whatever is specific to the chain it runs on (a devnet of node processes, a node
given with --node, or the in-process LocalChain) sits behind `Stage`. Every claim
is checked as it is printed; a failed check stops the demo with an error."""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

from rich.panel import Panel
from rich.table import Table

from medchain.app import (
    CreateRecordArgs,
    OrgKind,
    RecordVersion,
    Role,
    TransferArgs,
    UnwarrantArgs,
)
from medchain.client import (
    ChainBackend,
    MedchainClient,
    NotAReader,
    SignsReads,
    anon_submit,
    contributions,
    open_scope,
    reads_signed_by,
)
from medchain.crypto import AccountKeys, DecryptionFailed, format_address
from medchain.demo._access import credentials_scene, emergency_scene, proxy_scene
from medchain.demo._consortium import load_consortium
from medchain.demo._narration import Story
from medchain.demo._rights import (
    consent_scene,
    disclosures_scene,
    erasure_scene,
    recovery_scene,
)
from medchain.demo._stage import Cast, Stage
from medchain.node import TxFailed
from medchain.types import MedchainError, Receipt

PATIENT_DETAILS = {
    "name": "Alice Martin",
    "birthDate": "1984-03-12",
    "phone": "+33 6 12 34 56 78",
    "address": "12 rue des Lilas, 69003 Lyon",
}
KEYWORD = "tachycardia"
STUDY = "cardio-2026"
FEES_PER_ACTOR = 100
"""Transactions' worth of fees each actor is given on a chain that charges fees."""


def heart_rate(value: int, when: str) -> dict[str, Any]:
    """A vital-signs Observation for the demo patient, with identifying details in it."""
    return {
        "resourceType": "Observation",
        "id": "hr-alice-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]
        },
        "subject": {"reference": "Patient/alice-martin-mrn-448812", "display": "Alice Martin"},
        "performer": [{"reference": "Practitioner/dr-bob", "display": "Dr. Bob Lefebvre"}],
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "beats/minute",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def run_story(stage: Stage, story: Story) -> None:
    """The whole story on `stage`, told by `story`; raises MedchainError at the first
    failed check."""
    console = story.console
    chain = stage.chain
    console.print(
        Panel.fit(
            "medchain — encrypted, patient-controlled medical records\n" + stage.banner(),
            title="demo",
        )
    )

    story.section("People and their keys")
    consortium = load_consortium(chain, stage.orgs_dir)
    hospital = consortium.first(OrgKind.HOSPITAL)
    research = consortium.first(OrgKind.RESEARCH)
    console.print(
        f"  the consortium's {hospital.org.name} and {research.org.name} act through their "
        "admin's and their own account's keys"
    )
    people = [AccountKeys.generate() for _ in range(4)]
    cast = Cast(people[0], people[1], people[2], research.account, people[3])
    alice, bob, carol, lab, mallory = (cast.alice, cast.bob, cast.carol, cast.lab, cast.mallory)
    table = Table("who", "address")
    for who, keys in cast.names.items():
        table.add_row(who, keys.address_text)
    console.print(table)
    A, B, C, L, M = (MedchainClient(k, chain) for k in (alice, bob, carol, lab, mallory))
    others = [MedchainClient(AccountKeys.generate(), chain) for _ in range(5)]
    eve, leo = (MedchainClient(AccountKeys.generate(), chain) for _ in range(2))
    dana, stranger, dana_new = (MedchainClient(AccountKeys.generate(), chain) for _ in range(3))
    hospital_account = MedchainClient(hospital.account, chain)
    members = [m.account for m in consortium.members]
    rights = [dana.keys, stranger.keys, dana_new.keys]
    extras = [eve.keys, leo.keys, hospital.admin, *members, *(o.keys for o in others), *rights]
    _pay_fees(story, stage, [alice, bob, carol, lab, mallory, *extras])

    story.section("Registration (RC): whoever registers is a patient")
    A.register(Role.PATIENT, PATIENT_DETAILS["name"], PATIENT_DETAILS)
    B.register(Role.PATIENT, "Bob Lefebvre")
    C.register(Role.PATIENT, "Carol Petit")
    identity = chain.identity(alice.address)
    assert identity is not None
    story.check("Alice is registered as a patient", identity.role is Role.PATIENT)
    story.check(
        "her name and contact details are not on chain in clear",
        all(v.encode() not in identity.profile for v in PATIENT_DETAILS.values())
        and identity.name == "",
    )
    story.check("Alice can open her own sealed profile", A.my_profile() == PATIENT_DETAILS)
    doctors = {"Dr. Bob Lefebvre, cardiology": B, "Dr. Carol Petit, general practice": C}
    credentials_scene(story, hospital, doctors, eve, alice.address, heart_rate)

    story.section("Dr. Bob uploads an encrypted heart-rate record for Alice (MRC)")
    record_id = B.put_record(alice.address, heart_rate(72, "2026-11-20T08:30:00+01:00"))
    record = chain.record(record_id)
    assert record is not None
    version = A.chain.record_version(record_id, 1)  # a node serves it to its readers
    assert version is not None
    console.print(f"  record id {record_id.hex()}, ciphertext {version.cid}")
    blob = A.chain.blobs.get(version.cid)
    story.check(
        "the off-chain blob matches its CID and on-chain hash",
        A._fetch(version.cid, version.ciphertext_hash) == blob,
    )
    story.check(
        "the ciphertext holds no trace of the patient",
        b"Alice" not in blob and b"8867-4" not in blob,
    )
    story.check(
        "owner = Alice, author = Dr. Bob",
        record.owner == alice.address and record.author == bob.address,
    )
    for name, peer in stage.peers():
        story.check(
            f"{name} holds the same record: owner, author, ciphertext CID and hash",
            peer.record(record_id) == record
            and reads_signed_by(peer, alice).record_version(record_id, 1) == version,
        )
    story.check("Alice reads her record", A.read_record(record_id)["valueQuantity"]["value"] == 72)
    story.check("Dr. Bob reads what he wrote", B.read_record(record_id)["id"] == "hr-alice-1")
    story.refused("Dr. Carol cannot read it yet", lambda: C.read_record(record_id), NotAReader)
    story.refused(
        "a stranger holding a copy of the ciphertext cannot decrypt it even with a stolen wrap",
        lambda: _open_with_wrong_key(mallory, version, blob, record_id),
        DecryptionFailed,
    )

    story.section("Alice grants Dr. Carol, then revokes her")
    granted = A.grant(record_id, carol.address)
    story.check(
        "Dr. Carol reads the record after the grant", C.read_record(record_id)["status"] == "final"
    )
    story.refused(
        "only the owner may grant: Dr. Bob cannot",
        lambda: B.grant(record_id, lab.address),
        code="not_owner",
    )
    A.revoke(record_id, carol.address)
    number = B.add_version(record_id, heart_rate(118, "2026-11-21T09:10:00+01:00"))
    story.check(f"Dr. Bob adds version {number} under a fresh key", number == 2)
    story.refused(
        "Dr. Carol cannot open the version created after her revocation",
        lambda: C.read_record(record_id),
        NotAReader,
    )
    story.check(
        "Alice still reads the newest version",
        A.read_record(record_id)["valueQuantity"]["value"] == 118,
    )
    if isinstance(chain, SignsReads):  # a node authenticates reads
        story.refused(
            "the nodes no longer serve Carol even the version she was shown (what she "
            "opened then stays with her: revocation is forward-only)",
            lambda: C.read_record(record_id, version=1),
            NotAReader,
        )
    else:  # in process, nobody stands between Carol and the state
        story.check(
            "revocation is forward-only: Carol keeps the version she was shown",
            C.read_record(record_id, version=1)["valueQuantity"]["value"] == 72,
        )
    stage.agree(story)

    story.section("Research access (ALC): a de-identified copy")
    A.research_grant(record_id, lab.address)
    (item,) = L.research_data()
    console.print_json(json.dumps(item.resource))
    text = json.dumps(item.resource)
    story.check(
        "the research copy has no name, identifier, phone, address or exact date",
        all(s not in text for s in ("Alice", "Martin", "448812", "Lefebvre", "2026-11-21T")),
    )
    story.check("clinical content is intact", item.resource["valueQuantity"]["value"] == 118)
    story.refused(
        "the institution cannot open the full record", lambda: L.read_record(record_id), NotAReader
    )
    A.revoke(record_id, lab.address)
    story.check("unwarranting the institution empties its research list", L.research_data() == [])

    story.section("Encrypted keyword search (the nodes never learn the keyword)")
    A.index_record(record_id, [KEYWORD, "cardiology"])
    story.check(
        "Alice finds her record by keyword", A.search("Tachycardia").record_ids == (record_id,)
    )
    files = stage.storage_files()
    if files is None:
        story.note("the nodes' database files are out of reach: not searched for the keyword")
    else:
        stored = b"".join(p.read_bytes() for p in files)
        story.check(
            f"the keyword is nowhere in the database ({len(files)} files, {len(stored):,} bytes)",
            bool(files) and KEYWORD.encode() not in stored,
        )
    capability = A.grant_search(bob.address, ["cardiology"])
    story.check(
        "Dr. Bob searches Alice's index with the capability she sealed to him",
        B.search_with_capability(capability, "cardiology").record_ids == (record_id,),
    )
    story.refused(
        "the capability covers only the keywords she chose",
        lambda: B.search_with_capability(capability, KEYWORD),
    )

    story.section("Anonymous contribution to a study (linkable ring signature)")
    for count, other in enumerate(others):
        other.register(Role.PATIENT, f"Study participant {count}")
    study = STUDY if chain.anon_scope(STUDY) is None else f"{STUDY}-{secrets.token_hex(3)}"
    open_scope(L, study, Role.PATIENT, 5)
    anon_submit(A, study, heart_rate(95, "2026-11-19T07:00:00+01:00"), ring_size=5)
    (entry,) = chain.anon_entries(study)
    story.check(
        f"the chain shows a ring of 5 patients in study {study}, not which one contributed",
        len(entry.ring) == 5 and alice.address in entry.ring,
    )
    (contribution,) = contributions(L, study)
    story.check(
        "the institute reads a de-identified copy",
        "Alice" not in json.dumps(contribution.resource),
    )
    story.refused(
        "a second contribution by the same patient to the same study",
        lambda: anon_submit(A, study, heart_rate(96, "2026-11-20"), ring_size=5),
        code="key_image_reused",
        status=409,
    )

    story.section("The audit trail")
    names = {keys.address: who for who, keys in cast.names.items()}
    trail = chain.audit(record_id)
    console.print(story.audit_table(trail, names))
    story.check(
        "every grant, revoke and version is in the trail",
        [e.action.value for e in trail]
        == [
            "created",
            "granted",
            "granted",
            "revoked",
            "versioned",
            "research_granted",
            "research_revoked",
        ],
    )
    for name, peer in stage.peers():
        story.check(f"the trail read from {name} is the same", peer.audit(record_id) == trail)
    proxy_scene(story, A, leo, B, carol.address, heart_rate)
    emergency_scene(story, consortium, A, B, C)

    _attacks(story, stage, cast, A, B, M, record_id, version, granted)
    # Before staking: while no candidate has votes every validator may propose, so
    # the chain outlives the node the restart step kills.
    stage.restart(story, cast, record_id)
    _staking(story, stage, lab, L)
    consented = consent_scene(story, A, B, C, heart_rate)
    disclosures_scene(story, A, C, consented)
    erasure_scene(story, A, B, heart_rate, list(stage.peers()))
    recovery_scene(story, dana, [B, C, hospital_account], stranger, dana_new, heart_rate)
    height, _ = stage.snapshot()
    console.print(
        Panel.fit(f"[green]demo complete[/]: {height} blocks, every check passed", title="done")
    )


def _pay_fees(story: Story, stage: Stage, accounts: list[AccountKeys]) -> None:
    """On a chain that charges fees, give each actor enough for its transactions."""
    fee = stage.chain.params.min_fee
    if fee == 0:
        return
    if stage.bank is None:
        raise MedchainError(
            f"this chain charges a fee of {fee} per transaction and the demo has no funds "
            "to pay its actors' fees; give a funded account's key with --faucet KEY"
        )
    bank = MedchainClient(stage.bank, stage.chain)
    for keys in accounts:
        bank.transfer(keys.address, FEES_PER_ACTOR * fee)
    story.check(
        f"the chain charges {fee} per transaction: each actor is given "
        f"{FEES_PER_ACTOR * fee:,} by {format_address(stage.bank.address)}",
        all(stage.chain.account(k.address).balance >= FEES_PER_ACTOR * fee for k in accounts),
    )


def _attacks(
    story: Story,
    stage: Stage,
    cast: Cast,
    A: MedchainClient,
    B: MedchainClient,
    M: MedchainClient,
    record_id: bytes,
    version: RecordVersion,
    granted: Receipt,
) -> None:
    story.section("Attacks the chain refuses (state unchanged)")
    chain = stage.chain
    before = stage.snapshot()
    height, replayed = stage.find_tx(granted.tx_id)
    claim = f"a replay of Alice's grant to Dr. Carol (copied from block {height})"
    try:
        again = stage.submit_raw(replayed.encoded)
    except MedchainError as exc:
        story.refusal(claim, exc, code="nonce_reused")
    else:
        story.check(
            f"{claim} is not applied again: the node answers with its original receipt",
            again == granted,
        )
    record = chain.record(record_id)
    story.check(
        "Dr. Carol, revoked since, is still not among the record's readers",
        record is not None and cast.carol.address not in record.readers,
    )
    story.refused(
        "another transaction signed with a nonce Alice already spent",
        lambda: chain.submit(
            A.build("records.unwarrant", UnwarrantArgs(record_id, cast.bob.address), nonce=0)
        ),
        code="nonce_reused",
        status=409,
    )
    pending = A.build("records.unwarrant", UnwarrantArgs(record_id, cast.bob.address))
    forged = dataclasses.replace(pending, signature=cast.mallory.sign(pending.signing_bytes()))
    story.refused(
        "Alice's revocation of Dr. Bob, re-signed by Mallory",
        lambda: chain.submit(forged),
        code="invalid_signature",
        status=400,
    )
    story.refused(
        "Dr. Bob's transaction with a nonce from the future",
        lambda: chain.submit(
            B.build("accounts.transfer", TransferArgs(cast.alice.address, 1), nonce=99)
        ),
        code="nonce_gap",
        status=400,
    )
    too_big = b"\x00" * (chain.params.max_tx_bytes + 1)
    story.refused(
        "an oversized transaction",
        lambda: stage.submit_raw(too_big),
        code="tx_too_large",
        status=413,
    )
    story.refused(
        "malformed bytes",
        lambda: stage.submit_raw(b"\xf8\xff garbage"),
        code="malformed_tx",
        status=400,
    )
    claim, holds = stage.unchanged(before)
    story.check(claim, holds)
    records = chain.patient_records(cast.alice.address)
    story.refused(
        "an unregistered, uncredentialed account writing a record into Alice's list",
        lambda: M.send(
            "records.create",
            CreateRecordArgs(
                cast.alice.address,
                "Observation",
                version.cid,
                version.ciphertext_hash,
                version.wraps[:1],
            ),
        ),
        TxFailed,
        code="not_credentialed",
    )
    story.check(
        "Alice's list of records is unchanged", chain.patient_records(cast.alice.address) == records
    )


def _staking(story: Story, stage: Stage, lab: AccountKeys, L: MedchainClient) -> None:
    story.section("Tokens and staking")
    if stage.bank is None:
        story.note(
            "skipped: staking needs tokens and the demo has no funded account; "
            "give one with --faucet KEY"
        )
        return
    chain = stage.chain
    bank = MedchainClient(stage.bank, chain)
    if stage.validator is not None:
        voter = MedchainClient(stage.validator, chain)
        candidate, who = stage.validator.address, "the validator"
    else:
        voter = bank
        candidate, who = chain.candidates()[0].address, "the leading validator"
    before = _votes(chain, candidate)
    bank.transfer(lab.address, 50_000)
    L.stake(20_000)
    L.vote(candidate, 15_000)
    voter.stake(100_000)
    voter.vote(candidate, 100_000)
    after = _votes(chain, candidate)
    story.check(
        f"{who} gains 115,000 votes ({before:,} → {after:,}) and leads the election",
        after - before == 115_000 and chain.candidates()[0].address == candidate,
    )
    stake = chain.stake(lab.address)
    story.console.print(
        f"  institute: bonded {stake.bonded}, voting {stake.voted}, free {stake.free}"
    )


def _votes(chain: ChainBackend, candidate: bytes) -> int:
    return next((c.votes for c in chain.candidates() if c.address == candidate), 0)


def _open_with_wrong_key(
    stranger: AccountKeys, version: RecordVersion, blob: bytes, record_id: bytes
) -> None:
    from medchain.client import open_sealed, version_context

    stolen = version.wraps[0].wrapped_key
    open_sealed(stranger, stolen, blob, version_context(record_id, 1))


__all__ = ["heart_rate", "run_story"]
