"""`medchain demo`: the whole story on a fresh local chain, told step by step.

Every step runs the real code paths — signed transactions, the contracts, HPKE
key wrapping, the SQLite store — and every claim the report makes is checked
as it is printed (a failed check stops the demo with an error)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from medchain.app import (
    CreateRecordArgs,
    InvalidSignature,
    KeyImageReused,
    MalformedTx,
    NonceGap,
    NonceReused,
    Role,
    TransferArgs,
    TxTooLarge,
    UnwarrantArgs,
)
from medchain.cli._commands import audit_table
from medchain.cli._common import console, create_chain, reports_errors
from medchain.client import MedchainClient, NotAReader
from medchain.client._anon import anon_submit, contributions, open_scope
from medchain.crypto import AccountKeys, DecryptionFailed
from medchain.node import LocalChain, TxFailed
from medchain.types import MedchainError

PATIENT_DETAILS = {
    "name": "Alice Martin",
    "birthDate": "1984-03-12",
    "phone": "+33 6 12 34 56 78",
    "address": "12 rue des Lilas, 69003 Lyon",
}


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


class _Story:
    def __init__(self) -> None:
        self.step = 0

    def section(self, title: str) -> None:
        self.step += 1
        console.rule(f"[bold]{self.step}. {title}")

    def check(self, claim: str, holds: bool) -> None:
        if not holds:
            raise MedchainError(f"demo check failed: {claim}")
        console.print(f"  [green]✓[/] {claim}", highlight=False)

    def refused(self, claim: str, action: Callable[[], object], *errors: type[Exception]) -> str:
        try:
            action()
        except errors as exc:
            message = exc.message if isinstance(exc, MedchainError) else str(exc)
            console.print(f"  [green]✓[/] {claim}", highlight=False)
            console.print(f"    [dim]→ {type(exc).__name__}: {message}[/]", highlight=False)
            return message
        raise MedchainError(f"demo check failed: {claim} (it was allowed)")


@contextmanager
def _data_dir(data: Path | None) -> Iterator[Path]:
    if data is not None:
        yield data
        return
    with tempfile.TemporaryDirectory(prefix="medchain-demo-") as tmp:
        yield Path(tmp) / "chain"


@reports_errors
def demo(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Keep the demo chain in this new directory (default: temporary)."
        ),
    ] = None,
) -> None:
    """Run the end-to-end story: registration, encrypted records, grants, revocation,
    research copies, the audit trail, attacks refused, staking, and a restart."""
    with _data_dir(data) as home:
        chain = create_chain(home, "medchain-demo")
        try:
            _run(chain, home)
        finally:
            chain.close()


def _run(chain: LocalChain, home: Path) -> None:
    story = _Story()
    console.print(
        Panel.fit(
            "medchain — encrypted, patient-controlled medical records\n"
            f"local chain [bold]{chain.chain_id}[/] in {home}",
            title="demo",
        )
    )

    story.section("People and their keys")
    alice, bob, carol = AccountKeys.generate(), AccountKeys.generate(), AccountKeys.generate()
    lab, mallory = AccountKeys.generate(), AccountKeys.generate()
    cast = {
        "Alice (patient)": alice,
        "Dr. Bob (cardiologist)": bob,
        "Dr. Carol (GP)": carol,
        "Lyon Heart Research Institute": lab,
        "Mallory (not registered)": mallory,
    }
    table = Table("who", "address")
    for who, keys in cast.items():
        table.add_row(who, keys.address_text)
    console.print(table)
    A, B, C, L, M = (MedchainClient(k, chain) for k in (alice, bob, carol, lab, mallory))

    story.section("Registration (RC)")
    A.register(Role.PATIENT, PATIENT_DETAILS["name"], PATIENT_DETAILS)
    B.register(Role.DOCTOR, "Dr. Bob Lefebvre")
    C.register(Role.DOCTOR, "Dr. Carol Petit")
    L.register(Role.INSTITUTION, "Lyon Heart Research Institute")
    identity = chain.identity(alice.address)
    assert identity is not None
    story.check("Alice is registered as a patient", identity.role is Role.PATIENT)
    story.check(
        "her name and contact details are not on chain in clear",
        all(v.encode() not in identity.profile for v in PATIENT_DETAILS.values())
        and identity.name == "",
    )
    story.check("Alice can open her own sealed profile", A.my_profile() == PATIENT_DETAILS)

    story.section("Dr. Bob uploads an encrypted heart-rate record for Alice (MRC)")
    record_id = B.put_record(alice.address, heart_rate(72, "2026-11-20T08:30:00+01:00"))
    record = chain.record(record_id)
    assert record is not None
    version = chain.record_version(record_id, 1)
    assert version is not None
    console.print(f"  record id {record_id.hex()}, ciphertext {version.cid}")
    blob = chain.blobs.get(version.cid)
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
    story.check("Alice reads her record", A.read_record(record_id)["valueQuantity"]["value"] == 72)
    story.check("Dr. Bob reads what he wrote", B.read_record(record_id)["id"] == "hr-alice-1")
    story.refused("Dr. Carol cannot read it yet", lambda: C.read_record(record_id), NotAReader)
    story.refused(
        "a stranger holding a copy of the ciphertext cannot decrypt it even with a stolen wrap",
        lambda: _open_with_wrong_key(mallory, version, blob, record_id),
        DecryptionFailed,
    )

    story.section("Alice grants Dr. Carol, then revokes her")
    A.grant(record_id, carol.address)
    story.check(
        "Dr. Carol reads the record after the grant", C.read_record(record_id)["status"] == "final"
    )
    story.refused(
        "only the owner may grant: Dr. Bob cannot",
        lambda: B.grant(record_id, lab.address),
        MedchainError,
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
    story.check(
        "revocation is forward-only: Carol keeps the version she was shown",
        C.read_record(record_id, version=1)["valueQuantity"]["value"] == 72,
    )

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

    story.section("Encrypted keyword search (the node never learns the keyword)")
    A.index_record(record_id, ["tachycardia", "cardiology"])
    story.check(
        "Alice finds her record by keyword", A.search("Tachycardia").record_ids == (record_id,)
    )
    stored = b"".join(p.read_bytes() for p in home.glob("chain.sqlite*"))
    story.check("the keyword is nowhere in the chain's database", b"tachycardia" not in stored)
    capability = A.grant_search(bob.address, ["cardiology"])
    story.check(
        "Dr. Bob searches Alice's index with the capability she sealed to him",
        B.search_with_capability(capability, "cardiology").record_ids == (record_id,),
    )
    story.refused(
        "the capability covers only the keywords she chose",
        lambda: B.search_with_capability(capability, "tachycardia"),
        MedchainError,
    )

    story.section("Anonymous contribution to a study (linkable ring signature)")
    others = [MedchainClient(AccountKeys.generate(), chain) for _ in range(5)]
    for number, other in enumerate(others):
        other.register(Role.PATIENT, f"Study participant {number}")
    open_scope(L, "cardio-2026", Role.PATIENT, 5)
    anon_submit(A, "cardio-2026", heart_rate(95, "2026-11-19T07:00:00+01:00"), ring_size=5)
    (entry,) = chain.anon_entries("cardio-2026")
    story.check(
        "the chain shows a ring of 5 patients, not which one contributed",
        len(entry.ring) == 5 and alice.address in entry.ring,
    )
    (contribution,) = contributions(L, "cardio-2026")
    story.check(
        "the institute reads a de-identified copy",
        "Alice" not in json.dumps(contribution.resource),
    )
    story.refused(
        "a second contribution by the same patient to the same study",
        lambda: anon_submit(A, "cardio-2026", heart_rate(96, "2026-11-20"), ring_size=5),
        KeyImageReused,
    )

    story.section("The audit trail")
    names = {keys.address: who for who, keys in cast.items()}
    console.print(audit_table(chain.audit(record_id), names))
    actions = [e.action.value for e in chain.audit(record_id)]
    story.check(
        "every grant, revoke and version is in the trail",
        actions
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

    story.section("Attacks the chain refuses (state unchanged)")
    root, height = chain.ledger.state_root(), chain.height
    story.refused("a replayed transaction", lambda: chain.submit(_last_tx(chain, bob)), NonceReused)
    pending = A.build("records.unwarrant", UnwarrantArgs(record_id, bob.address))
    forged = dataclasses.replace(pending, signature=mallory.sign(pending.signing_bytes()))
    story.refused(
        "Alice's revocation of Dr. Bob, re-signed by Mallory",
        lambda: chain.submit(forged),
        InvalidSignature,
    )
    story.refused(
        "Dr. Bob's transaction with a nonce from the future",
        lambda: chain.submit(
            B.build("accounts.transfer", TransferArgs(alice.address, 1), nonce=99)
        ),
        NonceGap,
    )
    too_big = b"\x00" * (chain.params.max_tx_bytes + 1)
    story.refused("an oversized transaction", lambda: chain.submit_raw(too_big), TxTooLarge)
    story.refused("malformed bytes", lambda: chain.submit_raw(b"\xf8\xff garbage"), MalformedTx)
    story.refused(
        "an unregistered account writing a record into Alice's list",
        lambda: M.send(
            "records.create",
            CreateRecordArgs(
                alice.address,
                "Observation",
                version.cid,
                version.ciphertext_hash,
                version.wraps[:1],
            ),
        ),
        TxFailed,
    )
    story.check(
        "height and state root did not move",
        (chain.height, chain.ledger.state_root()) == (height, root),
    )

    story.section("Tokens and staking")
    validator = MedchainClient(chain.validator, chain)
    validator.transfer(lab.address, 50_000)
    L.stake(20_000)
    L.vote(chain.validator.address, 15_000)
    validator.stake(100_000)
    validator.vote(chain.validator.address, 100_000)
    ranked = chain.candidates()
    story.check("the validator leads the election with 115,000 votes", ranked[0].votes == 115_000)
    stake = chain.stake(lab.address)
    console.print(f"  institute: bonded {stake.bonded}, voting {stake.voted}, free {stake.free}")

    story.section("Restart: the data directory restores the exact state")
    root, height = chain.ledger.state_root(), chain.height
    reopened = LocalChain.open(home)
    try:
        story.check(
            f"height {height} and state root {root.hex()[:16]}… restored",
            (reopened.height, reopened.ledger.state_root()) == (height, root),
        )
        story.check(
            "Alice still reads her record after the restart",
            MedchainClient(alice, reopened).read_record(record_id)["valueQuantity"]["value"] == 118,
        )
    finally:
        reopened.close()
    console.print(
        Panel.fit(f"[green]demo complete[/]: {height} blocks, every check passed", title="done")
    )


def _open_with_wrong_key(
    stranger: AccountKeys, version: Any, blob: bytes, record_id: bytes
) -> None:
    from medchain.client._envelope import open_sealed, version_context

    stolen = version.wraps[0].wrapped_key
    open_sealed(stranger, stolen, blob, version_context(record_id, 1))


def _last_tx(chain: LocalChain, keys: AccountKeys) -> Any:
    """The latest transaction `keys` sent, fetched back from the chain to be replayed."""
    for height in range(chain.height, 0, -1):
        block = chain.block_at(height)
        assert block is not None
        for tx in block.txs:
            if tx.sender == keys.public_key:
                return tx
    raise MedchainError("no transaction to replay")


__all__ = ["demo"]
