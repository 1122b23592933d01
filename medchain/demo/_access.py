"""The story's scenes about who may act: a hospital credentials its doctors while a
self-declared doctor is refused, a mother acts for her child as his proxy, and an
emergency clinician opens a patient's emergency set, which the patient then sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medchain.app import CredentialRole, ProxyRelation, ProxyScope, RegisterArgs, Role
from medchain.client import (
    EmergencyChain,
    EmergencyNotOpen,
    MedchainClient,
    add_proxy,
    answer_pending,
    open_emergency,
    read_emergency_set,
    set_up_emergency_policy,
)
from medchain.demo._consortium import Consortium, Member
from medchain.demo._narration import Story

Resource = Callable[[int, str], dict[str, Any]]
"""A FHIR resource of the story, from a value and a time."""


def credentials_scene(
    story: Story,
    hospital: Member,
    doctors: dict[str, MedchainClient],
    eve: MedchainClient,
    alice: bytes,
    resource: Resource,
) -> None:
    """`doctors`: the clients to credential, by the name the hospital vouches for;
    `eve`: an account that calls herself a doctor."""
    story.section(f"{hospital.org.name} credentials its doctors; a self-declared one is refused")
    chain = eve.chain
    keys = eve.keys
    story.refused(
        "Eve cannot register herself as a doctor",
        lambda: eve.send(
            "registry.register",
            RegisterArgs(Role.DOCTOR, "Dr. Eve", keys.encryption_public_key, b"", b""),
        ),
        code="wrong_role",
    )
    eve.register(Role.PATIENT, "Eve")
    story.refused(
        "Eve, a self-registered account (a patient), cannot write a record for Alice",
        lambda: eve.put_record(alice, resource(64, "2026-11-18T10:00:00+01:00")),
        code="not_credentialed",
    )
    story.check("Alice's record list is still empty", chain.patient_records(alice) == [])
    admin = MedchainClient(hospital.admin, chain)
    for name, doctor in doctors.items():
        admin.issue_credential(doctor.address, CredentialRole.DOCTOR, name)
        (held,) = chain.credentials_of(doctor.address)
        story.check(
            f"{hospital.org.org_id}'s admin credentials {name!r} as a doctor, on chain",
            held.org_id == hospital.org.org_id
            and held.role is CredentialRole.DOCTOR
            and held.name == name,
        )


def proxy_scene(
    story: Story,
    mother: MedchainClient,
    child: MedchainClient,
    doctor: MedchainClient,
    colleague: bytes,
    resource: Resource,
) -> None:
    """`mother` acts for `child`, whose record `doctor` writes, and grants it to
    `colleague`."""
    story.section("A mother acts for her child (proxy)")
    chain = child.chain
    child.register(Role.PATIENT, "Leo Martin")
    record_id = doctor.put_record(child.address, resource(110, "2026-11-22T16:00:00+01:00"))
    scopes = (ProxyScope.READ, ProxyScope.GRANT)
    change = add_proxy(child, mother.address, ProxyRelation.PARENT, scopes)
    story.check(
        "Leo names Alice his proxy as a parent (read, grant): his record opens to her",
        change.records == (record_id,),
    )
    story.check(
        "Alice reads her son's record with her own key",
        mother.read_record(record_id)["valueQuantity"]["value"] == 110,
    )
    mother.grant(record_id, colleague)
    last = chain.audit(record_id)[-1]
    story.check(
        "Alice grants Dr. Carol for Leo: the trail says by Alice, on behalf of Leo",
        last.actor == mother.address and last.on_behalf == child.address,
    )
    story.refused(
        "outside her scopes: Alice cannot write a record for Leo",
        lambda: mother.put_record(child.address, resource(90, "2026-11-23T08:00:00+01:00")),
        code="not_a_proxy",
    )
    story.check(
        "Leo's record list holds only Dr. Bob's",
        chain.patient_records(child.address) == [record_id],
    )


def emergency_scene(
    story: Story,
    consortium: Consortium,
    patient: MedchainClient,
    author: MedchainClient,
    clinician: MedchainClient,
) -> None:
    """`patient` turns break-glass on, `author` writes a record of the set, and
    `clinician` opens it once enough of the consortium's organisations answered."""
    story.section("Break-glass: an emergency clinician opens Alice's emergency set")
    chain = patient.chain
    if not isinstance(chain, EmergencyChain):
        story.note("skipped: this chain answers no break-glass queries")
        return
    set_up_emergency_policy(patient)
    policy = chain.emergency_policy(patient.address)
    assert policy is not None
    needed = policy.threshold
    story.check(
        f"Alice's emergency key is split among {len(policy.shares)} organisations: any "
        f"{needed} open her set, no single one can",
        1 < needed <= len(policy.shares),
    )
    written = author.put_record(patient.address, diabetes(patient.address))
    request_id = open_emergency(clinician, patient.address, REASON)
    members = [m for m in consortium.members if m.org.org_id in {s.org_id for s in policy.shares}]
    for member in members[: needed - 1]:
        answer_pending(MedchainClient(member.account, chain))
    story.refused(
        f"with {needed - 1} answers the set stays closed to Dr. Carol",
        lambda: read_emergency_set(clinician, request_id),
        EmergencyNotOpen,
    )
    answer_pending(MedchainClient(members[needed - 1].account, chain))
    opened = read_emergency_set(clinician, request_id)
    story.check(
        f"with {needed} answers Dr. Carol reads the set as it stood: the diabetes "
        "record, not the heart-rate readings",
        [r.record_id for r in opened] == [written]
        and opened[0].resource["code"]["text"] == "Type 1 diabetes",
    )
    notes = chain.notifications_of(patient.address)
    story.check(
        f"Alice later sees it: opened by Dr. Carol ({notes[0].org_id}), {REASON!r}, then "
        f"{len(notes) - 1} answers",
        notes[0].kind == "emergency.opened"
        and notes[0].actor == clinician.address
        and notes[0].detail == REASON
        and len(notes) == needed + 1,
    )


REASON = "unconscious in the emergency room"


def diabetes(patient: bytes) -> dict[str, Any]:
    """A condition of the default emergency set."""
    return {
        "resourceType": "Condition",
        "code": {"text": "Type 1 diabetes"},
        "subject": {"reference": f"Patient/{patient.hex()[:12]}"},
    }
