"""The proxies contract: who a patient names to act for them, within a scope and until
an expiry, and the records and research contracts acting "by proxy X for patient Y"."""

from __future__ import annotations

from typing import Any

import pytest

from medchain.app import (
    MAX_PROXIES_PER_PATIENT,
    AddProxyArgs,
    AddVersionArgs,
    AuditAction,
    CreateRecordArgs,
    NotAProxy,
    ProxyRelation,
    ProxyScope,
    RemoveProxyArgs,
    ResearchGrantArgs,
    ResearchRevokeArgs,
    Role,
    UnwarrantArgs,
    VersionWrap,
    WarrantArgs,
    audit_trail,
    get_data,
    get_record,
    new_record_id,
    patients_of,
    proxies_of,
    proxy_allows,
    require_proxy,
    required_readers,
)
from medchain.crypto import WRAPPED_KEY_SIZE, AccountKeys, format_address
from medchain.types import Receipt

from .conftest import World, fake_blob, fake_wraps

READ, GRANT, DEVICES, WRITE = (
    ProxyScope.READ,
    ProxyScope.GRANT,
    ProxyScope.DEVICES,
    ProxyScope.WRITE,
)


@pytest.fixture
def parent(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.PATIENT)
    return keys


def _add(
    world: World,
    patient: AccountKeys,
    proxy: AccountKeys,
    *scopes: ProxyScope,
    expires_ms: int = 0,
) -> Receipt:
    args = AddProxyArgs(proxy.address, ProxyRelation.PARENT, scopes, expires_ms)
    return world.call(patient, "proxies.add", args)


def _create(world: World, author: AccountKeys, patient: AccountKeys, *readers: bytes) -> bytes:
    cid, digest = fake_blob(b"record " + bytes([world.height % 256]))
    nonce = world.nonces.get(author.address, 0)
    wraps = fake_wraps(patient.address, *readers)
    world.ok(
        author, "records.create", CreateRecordArgs(patient.address, "Condition", cid, digest, wraps)
    )
    return new_record_id(author.address, nonce)


def _refused_without_trace(world: World, keys: AccountKeys, method: str, args: Any) -> Receipt:
    """Send a call that must be refused; assert that it changed nothing but balances and
    nonces."""
    before = world.entries_but_accounts()
    receipt = world.call(keys, method, args)
    assert not receipt.ok and world.entries_but_accounts() == before
    return receipt


def _attributes(receipt: Receipt, kind: str) -> dict[str, str]:
    (event,) = [e for e in receipt.events if e.kind == kind]
    return {a.key: a.value for a in event.attributes}


# -- adding and removing ------------------------------------------------------------


def test_patient_adds_a_proxy_with_scopes_and_expiry(
    world: World, patient: AccountKeys, parent: AccountKeys
) -> None:
    expires = world.now_ms() + 100
    receipt = _add(world, patient, parent, WRITE, READ, expires_ms=expires)
    assert receipt.ok
    (proxy,) = proxies_of(world.ledger.state, patient.address)
    assert (proxy.patient, proxy.proxy, proxy.relation) == (
        patient.address,
        parent.address,
        ProxyRelation.PARENT,
    )
    assert proxy.scopes == (READ, WRITE)  # sorted
    assert proxy.expires_ms == expires and proxy.added_height == world.height
    assert patients_of(world.ledger.state, parent.address) == [proxy]
    shown = _attributes(receipt, "proxy.added")
    assert shown["patient"] == format_address(patient.address)
    assert shown["proxy"] == format_address(parent.address)
    assert shown["scopes"] == "read,write"


def test_adding_again_changes_the_scopes_and_expiry(
    world: World, patient: AccountKeys, parent: AccountKeys
) -> None:
    assert _add(world, patient, parent, READ).ok
    first_height = world.height
    receipt = _add(world, patient, parent, GRANT, expires_ms=world.now_ms() + 5)
    assert receipt.ok and [e.kind for e in receipt.events] == ["proxy.updated"]
    (proxy,) = proxies_of(world.ledger.state, patient.address)
    assert proxy.scopes == (GRANT,) and proxy.expires_ms > 0
    assert proxy.added_height == first_height < world.height


def test_remove_takes_the_proxy_off_both_lists(
    world: World, patient: AccountKeys, parent: AccountKeys
) -> None:
    assert _add(world, patient, parent, READ).ok
    world.ok(patient, "proxies.remove", RemoveProxyArgs(parent.address))
    assert proxies_of(world.ledger.state, patient.address) == []
    assert patients_of(world.ledger.state, parent.address) == []
    again = _refused_without_trace(
        world, patient, "proxies.remove", RemoveProxyArgs(parent.address)
    )
    assert again.code == "not_a_proxy"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("self", "invalid_argument"),
        ("unregistered", "not_registered"),
        ("no_scopes", "invalid_argument"),
        ("scope_twice", "invalid_argument"),
        ("expired_already", "invalid_argument"),
        ("short_address", "invalid_argument"),
    ],
)
def test_bad_additions_are_refused_without_trace(
    world: World, patient: AccountKeys, parent: AccountKeys, case: str, code: str
) -> None:
    args = {
        "self": AddProxyArgs(patient.address, ProxyRelation.CARER, (READ,), 0),
        "unregistered": AddProxyArgs(
            AccountKeys.generate().address, ProxyRelation.CARER, (READ,), 0
        ),
        "no_scopes": AddProxyArgs(parent.address, ProxyRelation.CARER, (), 0),
        "scope_twice": AddProxyArgs(parent.address, ProxyRelation.CARER, (READ, READ), 0),
        "expired_already": AddProxyArgs(
            parent.address, ProxyRelation.CARER, (READ,), world.now_ms()
        ),
        "short_address": AddProxyArgs(b"\x01" * 19, ProxyRelation.CARER, (READ,), 0),
    }[case]
    receipt = _refused_without_trace(world, patient, "proxies.add", args)
    assert receipt.code == code and receipt.message


def test_only_a_patient_names_proxies(world: World, parent: AccountKeys) -> None:
    args = AddProxyArgs(parent.address, ProxyRelation.LEGAL, (READ,), 0)
    account = world.orgs[0].account  # an organisation's account is no patient
    assert _refused_without_trace(world, account, "proxies.add", args).code == "wrong_role"


def test_a_proxy_needs_an_encryption_key(
    world: World, patient: AccountKeys, validator: AccountKeys
) -> None:
    """The genesis validator is registered without an encryption key."""
    args = AddProxyArgs(validator.address, ProxyRelation.LEGAL, (READ,), 0)
    receipt = _refused_without_trace(world, patient, "proxies.add", args)
    assert receipt.code == "invalid_argument" and "encryption key" in receipt.message


def test_at_most_sixteen_proxies(world: World, patient: AccountKeys) -> None:
    for _ in range(MAX_PROXIES_PER_PATIENT):
        keys = AccountKeys.generate()
        world.register(keys, Role.PATIENT)
        assert _add(world, patient, keys, READ).ok
    one_more = AccountKeys.generate()
    world.register(one_more, Role.PATIENT)
    args = AddProxyArgs(one_more.address, ProxyRelation.CARER, (READ,), 0)
    receipt = _refused_without_trace(world, patient, "proxies.add", args)
    assert receipt.code == "invalid_argument" and "remove one" in receipt.message
    assert len(proxies_of(world.ledger.state, patient.address)) == MAX_PROXIES_PER_PATIENT


# -- the checks ---------------------------------------------------------------------


def test_require_proxy_says_why_not(
    world: World, patient: AccountKeys, parent: AccountKeys, doctor: AccountKeys
) -> None:
    expires = world.now_ms() + 3
    assert _add(world, patient, parent, READ, expires_ms=expires).ok
    state, now = world.ledger.state, world.now_ms()
    with pytest.raises(NotAProxy, match="not a proxy of"):
        require_proxy(state, doctor.address, patient.address, READ, now, "read")
    with pytest.raises(NotAProxy, match="holds scopes read, not grant"):
        require_proxy(state, parent.address, patient.address, GRANT, now, "grant")
    with pytest.raises(NotAProxy, match=f"expired at {expires} ms"):
        require_proxy(state, parent.address, patient.address, READ, expires, "read")
    assert require_proxy(state, parent.address, patient.address, READ, now, "read").proxy == (
        parent.address
    )
    assert proxy_allows(state, parent.address, patient.address, READ, expires - 1)
    assert not proxy_allows(state, parent.address, patient.address, READ, expires)
    assert not proxy_allows(state, parent.address, patient.address, WRITE, now)


# -- acting for the patient ---------------------------------------------------------


def _wrap() -> tuple[VersionWrap, ...]:
    return (VersionWrap(1, b"\x02" * WRAPPED_KEY_SIZE),)


def test_a_grant_proxy_warrants_by_proxy_for_the_patient(
    world: World, patient: AccountKeys, parent: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    assert _add(world, patient, parent, GRANT).ok
    receipt = world.ok(parent, "records.warrant", WarrantArgs(record_id, doctor.address, _wrap()))
    record = get_record(world.ledger.state, record_id)
    assert record is not None and record.readers == (doctor.address,)
    granted = audit_trail(world.ledger.state, record)[-1]
    assert granted.action is AuditAction.GRANTED
    assert (granted.actor, granted.on_behalf, granted.subject) == (
        parent.address,
        patient.address,
        doctor.address,
    )
    shown = _attributes(receipt, "record.granted")
    assert shown["proxy"] == format_address(parent.address)
    assert shown["patient"] == format_address(patient.address)

    world.ok(parent, "records.unwarrant", UnwarrantArgs(record_id, doctor.address))
    record = get_record(world.ledger.state, record_id)
    assert record is not None and record.readers == ()
    last = audit_trail(world.ledger.state, record)[-1]
    assert (last.action, last.actor, last.on_behalf) == (
        AuditAction.REVOKED,
        parent.address,
        patient.address,
    )


def test_the_patient_acting_records_no_proxy(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    receipt = world.ok(patient, "records.warrant", WarrantArgs(record_id, doctor.address, _wrap()))
    record = get_record(world.ledger.state, record_id)
    assert record is not None
    assert all(e.on_behalf == b"" for e in audit_trail(world.ledger.state, record))
    assert "proxy" not in _attributes(receipt, "record.granted")


@pytest.mark.parametrize(
    ("held", "method", "lacking"),
    [
        ((READ, DEVICES), "records.warrant", GRANT),
        ((GRANT,), "records.create", WRITE),
    ],
)
def test_a_proxy_outside_its_scope_is_refused(
    world: World,
    patient: AccountKeys,
    parent: AccountKeys,
    doctor: AccountKeys,
    held: tuple[ProxyScope, ...],
    method: str,
    lacking: ProxyScope,
) -> None:
    record_id = _create(world, patient, patient)
    assert _add(world, patient, parent, *held).ok
    args = {
        "records.warrant": WarrantArgs(record_id, doctor.address, _wrap()),
        "records.create": CreateRecordArgs(
            patient.address, "Observation", *fake_blob(b"fever"), fake_wraps(patient.address)
        ),
    }[method]
    receipt = _refused_without_trace(world, parent, method, args)
    assert receipt.code == "not_a_proxy" and f"not {lacking.value}" in receipt.message


def test_a_proxy_after_its_expiry_is_refused(
    world: World, patient: AccountKeys, parent: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    expires = world.now_ms() + 2
    assert _add(world, patient, parent, GRANT, expires_ms=expires).ok
    while world.now_ms() < expires:
        world.empty_blocks(1)
    args = WarrantArgs(record_id, doctor.address, _wrap())
    receipt = _refused_without_trace(world, parent, "records.warrant", args)
    assert receipt.code == "not_a_proxy" and f"expired at {expires} ms" in receipt.message


def test_a_removed_proxy_is_refused(
    world: World, patient: AccountKeys, parent: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    assert _add(world, patient, parent, GRANT).ok
    world.ok(patient, "proxies.remove", RemoveProxyArgs(parent.address))
    args = WarrantArgs(record_id, doctor.address, _wrap())
    assert _refused_without_trace(world, parent, "records.warrant", args).code == "not_owner"


def test_a_write_proxy_writes_what_the_patient_reports(
    world: World, patient: AccountKeys, parent: AccountKeys
) -> None:
    assert _add(world, patient, parent, WRITE).ok
    receipt = world.ok(
        parent,
        "records.create",
        CreateRecordArgs(
            patient.address, "Observation", *fake_blob(b"fever"), fake_wraps(patient.address)
        ),
    )
    record = get_record(
        world.ledger.state, new_record_id(parent.address, world.nonces[parent.address] - 1)
    )
    assert record is not None and (record.owner, record.author) == (patient.address, parent.address)
    (created,) = audit_trail(world.ledger.state, record)
    assert (created.actor, created.on_behalf) == (parent.address, patient.address)
    assert _attributes(receipt, "record.created")["patient"] == format_address(patient.address)


def test_a_grant_proxy_grants_and_revokes_research(
    world: World, patient: AccountKeys, parent: AccountKeys, institution: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    assert _add(world, patient, parent, GRANT).ok
    cid, digest = fake_blob(b"deidentified")
    wraps = fake_wraps(patient.address, institution.address)
    world.ok(
        parent,
        "research.grant",
        ResearchGrantArgs(record_id, institution.address, cid, digest, wraps),
    )
    assert [e.record_id for e in get_data(world.ledger.state, institution.address)] == [record_id]
    world.ok(parent, "research.revoke", ResearchRevokeArgs(record_id, institution.address))
    assert get_data(world.ledger.state, institution.address) == []
    record = get_record(world.ledger.state, record_id)
    assert record is not None
    trail = audit_trail(world.ledger.state, record)[-2:]
    assert [(e.action, e.actor, e.on_behalf) for e in trail] == [
        (AuditAction.RESEARCH_GRANTED, parent.address, patient.address),
        (AuditAction.RESEARCH_REVOKED, parent.address, patient.address),
    ]


# -- read proxies are required readers ----------------------------------------------


def test_a_read_proxy_is_required_on_later_records(
    world: World, patient: AccountKeys, parent: AccountKeys, doctor: AccountKeys
) -> None:
    assert _add(world, patient, parent, READ).ok
    assert required_readers(world.ledger.state, patient.address, world.now_ms()) == (
        parent.address,
    )
    args = CreateRecordArgs(
        patient.address,
        "Condition",
        *fake_blob(b"flu"),
        fake_wraps(patient.address, doctor.address),
    )
    receipt = _refused_without_trace(world, doctor, "records.create", args)
    assert receipt.code == "reader_required"
    assert format_address(parent.address) in receipt.message and "wrap" in receipt.message
    record_id = _create(world, doctor, patient, doctor.address, parent.address)
    record = get_record(world.ledger.state, record_id)
    assert record is not None and parent.address in record.readers


def test_a_new_read_proxy_joins_the_readers_of_the_next_version(
    world: World, patient: AccountKeys, parent: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    assert _add(world, patient, parent, READ).ok
    cid, digest = fake_blob(b"v2")
    without = AddVersionArgs(record_id, cid, digest, fake_wraps(patient.address))
    assert _refused_without_trace(world, patient, "records.add_version", without).code == (
        "reader_required"
    )
    world.ok(
        patient,
        "records.add_version",
        AddVersionArgs(record_id, cid, digest, fake_wraps(patient.address, parent.address)),
    )
    record = get_record(world.ledger.state, record_id)
    assert record is not None and record.readers == (parent.address,)
    last = audit_trail(world.ledger.state, record)[-1]
    assert (last.action, last.subject, last.version) == (AuditAction.GRANTED, parent.address, 2)


def test_an_expired_read_proxy_is_no_longer_required(
    world: World, patient: AccountKeys, parent: AccountKeys
) -> None:
    expires = world.now_ms() + 2
    assert _add(world, patient, parent, READ, expires_ms=expires).ok
    while world.now_ms() < expires:
        world.empty_blocks(1)
    assert required_readers(world.ledger.state, patient.address, world.now_ms()) == ()
    _create(world, patient, patient)
