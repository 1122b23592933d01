"""Erasure: the owner or their `grant` proxy erases a record; a stranger, a reader and
a `read` proxy cannot. The erasure leaves no key wrap, grant, research copy or
emergency wrap of the record in the state, names every ciphertext to delete, and every
later method on the record refuses with `record_erased`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from medchain.app import (
    MAX_ERASE_REASON_CHARS,
    AddProxyArgs,
    AddVersionArgs,
    AuditAction,
    CreateRecordArgs,
    EmergencyWrapArgs,
    EraseArgs,
    ProxyRelation,
    ProxyScope,
    ReaderGrant,
    ResearchGrantArgs,
    ResearchRevokeArgs,
    Role,
    UnwarrantArgs,
    VersionWrap,
    WarrantArgs,
    WrapRecordArgs,
    audit_trail,
    emergency_entries,
    erasure_at,
    erasure_count,
    get_data,
    get_erasure,
    get_policy,
    get_reader_grant,
    get_record,
    new_record_id,
    put_reader_grant,
    versions,
)
from medchain.app._emergency_set import get_entry as emergency_entry
from medchain.client import policy_args
from medchain.client._emergency_wraps import emergency_wrap_args
from medchain.crypto import WRAPPED_KEY_SIZE, AccountKeys, format_address, new_content_key
from medchain.types import ChainParams, Receipt

from .conftest import World, fake_blob, fake_wraps, make_org, make_world


@dataclass
class Erasable:
    """A record with two versions, a reader with stored grant terms, a research copy
    and an emergency wrap: everything an erasure must take away."""

    world: World
    patient: AccountKeys
    doctor: AccountKeys
    institution: AccountKeys
    record_id: bytes
    cids: tuple[str, ...]
    """The two versions' ciphertexts and the research copy's, sorted."""

    @property
    def state(self) -> Any:
        return self.world.ledger.state

    def erase(self, keys: AccountKeys, reason: str = "") -> Receipt:
        return self.world.call(keys, "records.erase", EraseArgs(self.record_id, reason))


def _grant_proxy(world: World, patient: AccountKeys, *scopes: ProxyScope) -> AccountKeys:
    proxy = AccountKeys.generate()
    world.register(proxy, Role.PATIENT)
    world.ok(patient, "proxies.add", AddProxyArgs(proxy.address, ProxyRelation.PARENT, scopes, 0))
    return proxy


def _emergency_policy(world: World, patient: AccountKeys) -> None:
    keys = {o.org_id: o.account.encryption_public_key for o in world.orgs}
    world.ok(patient, "emergency.set_policy", policy_args(patient.address, keys, 2))


def _wrap_for_emergency(world: World, patient: AccountKeys, record_id: bytes) -> None:
    policy = get_policy(world.ledger.state, patient.address)
    assert policy is not None
    wrap = emergency_wrap_args(policy, new_content_key(), record_id, 2)
    world.ok(patient, "emergency.wrap", WrapRecordArgs(record_id, wrap))


@pytest.fixture(name="e")
def erasable(validator: AccountKeys, rich: AccountKeys) -> Erasable:
    world = make_world((make_org("st-mary"), make_org("st-luke")), validator, rich, ChainParams())
    patient, doctor, institution = (AccountKeys.generate() for _ in range(3))
    world.register(patient, Role.PATIENT)
    world.register(doctor, Role.DOCTOR, "Dr. Grey")
    world.register(institution, Role.INSTITUTION, "Institute of Cardiology Research")
    record_id = new_record_id(patient.address, world.nonces[patient.address])
    first, first_hash = fake_blob(b"version 1")
    wraps = fake_wraps(patient.address, doctor.address)
    world.ok(
        patient,
        "records.create",
        CreateRecordArgs(patient.address, "Condition", first, first_hash, wraps),
    )
    with world.ledger.state.layer():  # grant terms, as a warrant with purposes stores them
        put_reader_grant(world.ledger.state, ReaderGrant(record_id, doctor.address, (), 0, 1))
    second, second_hash = fake_blob(b"version 2")
    world.ok(patient, "records.add_version", AddVersionArgs(record_id, second, second_hash, wraps))
    copy, copy_hash = fake_blob(b"de-identified copy")
    research = ResearchGrantArgs(
        record_id,
        institution.address,
        copy,
        copy_hash,
        fake_wraps(patient.address, institution.address),
    )
    world.ok(patient, "research.grant", research)
    _emergency_policy(world, patient)
    _wrap_for_emergency(world, patient, record_id)
    return Erasable(
        world, patient, doctor, institution, record_id, tuple(sorted((first, second, copy)))
    )


def _event(receipt: Receipt, kind: str) -> dict[str, str]:
    (event,) = [e for e in receipt.events if e.kind == kind]
    return {a.key: a.value for a in event.attributes}


# -- who may erase --------------------------------------------------------------------


def test_the_owner_erases_and_nothing_that_opens_the_record_is_left(e: Erasable) -> None:
    assert get_reader_grant(e.state, e.record_id, e.doctor.address) is not None
    assert emergency_entry(e.state, e.record_id) is not None
    receipt = e.erase(e.patient, "I withdraw this record")
    assert receipt.ok, receipt.message
    record = get_record(e.state, e.record_id)
    assert record is not None
    assert record.erased_height == e.world.height and record.erased_by == e.patient.address
    assert record.erased_ms == e.world.now_ms() - 1  # the block before the next
    assert record.readers == ()
    assert [v.wraps for v in versions(e.state, record)] == [(), ()]
    assert [v.cid for v in versions(e.state, record)] != []  # the history stays, closed
    assert get_reader_grant(e.state, e.record_id, e.doctor.address) is None
    assert get_data(e.state, e.institution.address) == []
    assert emergency_entry(e.state, e.record_id) is None
    assert emergency_entries(e.state, e.patient.address) == []
    assert audit_trail(e.state, record)[-1].action is AuditAction.ERASED
    shown = _event(receipt, "record.erased")
    assert shown["cids"].split() == list(e.cids)
    assert shown["reason"] == "I withdraw this record"
    assert shown["actor"] == format_address(e.patient.address)


def test_the_erasure_is_listed_for_nodes_that_join_later(e: Erasable) -> None:
    assert erasure_count(e.state) == 0
    e.erase(e.patient)
    assert erasure_count(e.state) == 1
    erasure = erasure_at(e.state, 0)
    assert erasure == get_erasure(e.state, e.record_id)
    assert (erasure.patient, erasure.cids) == (e.patient.address, e.cids)
    assert erasure.height == e.world.height


def test_a_research_copy_revoked_before_the_erasure_is_erased_too(e: Erasable) -> None:
    e.world.ok(e.patient, "research.revoke", ResearchRevokeArgs(e.record_id, e.institution.address))
    receipt = e.erase(e.patient)
    assert _event(receipt, "record.erased")["cids"].split() == list(e.cids)


def test_a_grant_proxy_erases_for_the_patient(e: Erasable) -> None:
    proxy = _grant_proxy(e.world, e.patient, ProxyScope.GRANT)
    receipt = e.erase(proxy)
    assert receipt.ok, receipt.message
    record = get_record(e.state, e.record_id)
    assert record is not None and record.erased_by == proxy.address
    shown = _event(receipt, "record.erased")
    assert (shown["proxy"], shown["patient"]) == (
        format_address(proxy.address),
        format_address(e.patient.address),
    )


def test_a_stranger_a_reader_and_a_read_proxy_cannot_erase(e: Erasable) -> None:
    stranger = AccountKeys.generate()
    e.world.register(stranger, Role.PATIENT)
    read_proxy = _grant_proxy(e.world, e.patient, ProxyScope.READ)
    args = EraseArgs(e.record_id)
    assert "own" in e.world.refused(stranger, "records.erase", args, "not_owner")
    e.world.refused(e.doctor, "records.erase", args, "not_owner")
    e.world.refused(read_proxy, "records.erase", args, "not_a_proxy")
    record = get_record(e.state, e.record_id)
    assert record is not None and record.erased_height == 0


def test_a_reason_too_long_is_refused(e: Erasable) -> None:
    args = EraseArgs(e.record_id, "x" * (MAX_ERASE_REASON_CHARS + 1))
    e.world.refused(e.patient, "records.erase", args, "invalid_argument")


# -- after the erasure ------------------------------------------------------------------


def test_every_later_method_on_the_record_refuses(e: Erasable) -> None:
    e.erase(e.patient)
    cid, digest = fake_blob(b"version 3")
    wrap = (VersionWrap(2, b"\x02" * WRAPPED_KEY_SIZE),)
    reader = AccountKeys.generate()
    e.world.register(reader, Role.DOCTOR, "Dr. Shepherd")
    calls: list[tuple[AccountKeys, str, object]] = [
        (e.patient, "records.erase", EraseArgs(e.record_id)),
        (e.patient, "records.warrant", WarrantArgs(e.record_id, reader.address, wrap)),
        (e.patient, "records.unwarrant", UnwarrantArgs(e.record_id, e.doctor.address)),
        (
            e.patient,
            "records.add_version",
            AddVersionArgs(e.record_id, cid, digest, fake_wraps(e.patient.address)),
        ),
        (
            e.patient,
            "research.grant",
            ResearchGrantArgs(
                e.record_id, e.institution.address, cid, digest, fake_wraps(e.patient.address)
            ),
        ),
        (e.patient, "research.revoke", ResearchRevokeArgs(e.record_id, e.institution.address)),
        (
            e.patient,
            "emergency.wrap",
            WrapRecordArgs(e.record_id, EmergencyWrapArgs(b"\x01" * 32, b"\x02" * 48)),
        ),
    ]
    for keys, method, args in calls:
        message = e.world.refused(keys, method, args, "record_erased")
        assert "erased at height" in message and format_address(e.patient.address) in message
