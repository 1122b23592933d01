"""A patient's notices (medchain.client.notices): records others wrote for them (not
their own), a version, a proxy named with its scopes, a break-glass on their emergency
set and each organisation's answer, oldest first."""

from __future__ import annotations

from medchain.app import ProxyRelation, ProxyScope, Role
from medchain.client import (
    EMERGENCY_ANSWERED,
    EMERGENCY_OPENED,
    PROXY_ADDED,
    RECORD_CREATED,
    RECORD_VERSIONED,
    MedchainClient,
    add_proxy,
    answer_pending,
    notices,
    open_emergency,
    set_up_emergency_policy,
)
from medchain.crypto import AccountKeys
from tests.client.test_emergency import (  # noqa: F401  (the fixtures)
    ALLERGY,
    MEDICATION,
    ORG_IDS,
    People,
    clock,
    people,
)


def test_the_feed_holds_what_others_did_oldest_first(people: People) -> None:  # noqa: F811
    patient, clinician = people.patient, people.clinician
    assert notices(people.chain, patient.address) == []
    patient.put_record(patient.address, ALLERGY)  # her own: no notice
    set_up_emergency_policy(patient)
    record_id = clinician.put_record(patient.address, MEDICATION)
    clinician.add_version(record_id, {**MEDICATION, "status": "completed"})
    carer = MedchainClient(AccountKeys.generate(), people.chain)
    carer.register(Role.PATIENT, "a carer")
    add_proxy(patient, carer.address, ProxyRelation.CARER, (ProxyScope.DEVICES, ProxyScope.READ))
    request_id = open_emergency(clinician, patient.address, "unconscious")
    answer_pending(people.orgs[ORG_IDS[0]])

    feed = notices(people.chain, patient.address)
    assert [n.kind for n in feed] == [
        RECORD_CREATED,
        RECORD_VERSIONED,
        PROXY_ADDED,
        EMERGENCY_OPENED,
        EMERGENCY_ANSWERED,
    ]
    assert [n.height for n in feed] == sorted(n.height for n in feed)
    created, versioned, proxy, opened, answered = feed
    assert (created.actor, created.subject, created.detail) == (
        clinician.address,
        record_id,
        "MedicationStatement",
    )
    assert versioned.subject == record_id and not versioned.by_proxy
    assert (proxy.actor, proxy.detail, proxy.scopes) == (
        carer.address,
        "carer",
        ("devices", "read"),
    )
    assert (opened.actor, opened.subject, opened.detail) == (
        clinician.address,
        request_id,
        "unconscious",
    )
    assert answered.subject == request_id and answered.org_id == ORG_IDS[0]
