"""Who a node lets read sealed data: owners, readers with a grant in force for the
purpose, read proxies, emergency clinicians, research institutions, vitals readers;
everyone else is told what they lack, and an erased record is gone for all."""

from __future__ import annotations

import dataclasses

import pytest

from medchain.app import (
    Identity,
    PurposeOfUse,
    ReaderGrant,
    ReadNotAllowed,
    Record,
    RecordErased,
    ResearchEntry,
    Role,
    put_reader_grant,
    record_access,
    recovery_access,
    research_access,
    search_access,
    vitals_access,
)
from medchain.app._devices import _store_address_set, _vitals_readers_key
from medchain.app._emergency_log import EmergencyRequest, SnapshotItem, record_request
from medchain.app._proxies import Proxy, ProxyRelation, ProxyScope, _store
from medchain.app._records import _record_key
from medchain.app._recovery_log import (
    RecoveryApproval,
    RecoveryPolicy,
    RecoveryRequest,
    RecoveryStatus,
)
from medchain.app._registry import identity_key, subjoin_record
from medchain.app._state import State, save

PATIENT, READER, PROXY, CLINICIAN, STRANGER = (bytes([n]) * 20 for n in range(1, 6))
RECORD_ID = bytes(range(16))
TREAT, RESEARCH = PurposeOfUse.TREATMENT, PurposeOfUse.RESEARCH
NOW = 10_000


def _record(**changes: object) -> Record:
    record = Record(RECORD_ID, PATIENT, CLINICIAN, "Observation", 1, (READER,), 1, 1)
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


@pytest.fixture
def state() -> State:
    state = State()
    with state.layer():
        save(
            state,
            identity_key(PATIENT),
            Identity(PATIENT, b"k" * 32, b"e" * 32, Role.PATIENT, "p", b"", 1),
        )
        save(state, _record_key(RECORD_ID), _record())
        subjoin_record(state, PATIENT, RECORD_ID)
    return state


def _proxy(state: State, scopes: tuple[ProxyScope, ...], expires_ms: int = 0) -> None:
    with state.layer():
        _store(state, PATIENT, [Proxy(PATIENT, PROXY, ProxyRelation.CARER, scopes, expires_ms, 1)])


def test_the_owner_reads_for_any_purpose(state: State) -> None:
    assert record_access(state, _record(), PATIENT, RESEARCH, NOW).basis == "owner"


def test_a_listed_reader_reads_for_the_default_purpose_only(state: State) -> None:
    assert record_access(state, _record(), READER, TREAT, NOW).basis == "reader"
    with pytest.raises(ReadNotAllowed, match="is for TREAT, not HRESCH"):
        record_access(state, _record(), READER, RESEARCH, NOW)


def test_an_expired_grant_is_refused_and_one_in_force_served(state: State) -> None:
    with state.layer():
        put_reader_grant(state, ReaderGrant(RECORD_ID, READER, (TREAT,), NOW + 1, 1))
    assert record_access(state, _record(), READER, TREAT, NOW).basis == "reader"
    with pytest.raises(ReadNotAllowed, match=f"expired at {NOW + 1}"):
        record_access(state, _record(), READER, TREAT, NOW + 1)


def test_a_stranger_is_told_what_they_lack(state: State) -> None:
    with pytest.raises(ReadNotAllowed, match="is not an authorised reader") as refused:
        record_access(state, _record(), STRANGER, TREAT, NOW)
    assert refused.value.code == "read_not_authorised"


def test_a_read_proxy_reads_for_the_patient_until_it_expires(state: State) -> None:
    _proxy(state, (ProxyScope.READ,), expires_ms=NOW + 5)
    access = record_access(state, _record(), PROXY, TREAT, NOW)
    assert (access.basis, access.on_behalf) == ("proxy", PATIENT)
    with pytest.raises(ReadNotAllowed):
        record_access(state, _record(), PROXY, TREAT, NOW + 5)


def test_a_proxy_without_the_read_scope_reads_nothing(state: State) -> None:
    _proxy(state, (ProxyScope.GRANT, ProxyScope.DEVICES))
    with pytest.raises(ReadNotAllowed):
        record_access(state, _record(), PROXY, TREAT, NOW)


def _emergency(state: State, record_id: bytes, expires_ms: int) -> None:
    request = EmergencyRequest(
        b"r" * 16, PATIENT, CLINICIAN, "er", "cardiac arrest", 2, 0, expires_ms, 2, b"",
        (), (SnapshotItem(record_id, 1, b"", b""),), (),
    )  # fmt: skip
    with state.layer():
        record_request(state, request)


def test_an_open_emergency_request_covering_the_record_lets_its_clinician_read(
    state: State,
) -> None:
    _emergency(state, RECORD_ID, NOW + 1)
    assert record_access(state, _record(), CLINICIAN, TREAT, NOW).basis == "emergency"
    with pytest.raises(ReadNotAllowed):
        record_access(state, _record(), CLINICIAN, TREAT, NOW + 1)


def test_an_emergency_request_not_covering_the_record_opens_nothing(state: State) -> None:
    _emergency(state, b"\xff" * 16, NOW + 1)
    with pytest.raises(ReadNotAllowed):
        record_access(state, _record(), CLINICIAN, TREAT, NOW)


def test_an_erased_record_is_refused_even_to_its_owner(state: State) -> None:
    erased = _record(erased_height=9, erased_ms=123, erased_by=PATIENT, readers=())
    with pytest.raises(RecordErased, match="erased at height 9"):
        record_access(state, erased, PATIENT, TREAT, NOW)


def test_a_research_copy_is_for_its_institution_and_patient(state: State) -> None:
    entry = ResearchEntry(RECORD_ID, PATIENT, READER, 1, "cid", b"h" * 32, (), 3)
    assert research_access(state, entry, READER).basis == "research"
    assert research_access(state, entry, PATIENT).basis == "owner"
    with pytest.raises(ReadNotAllowed, match="shared with"):
        research_access(state, entry, STRANGER)


def test_vitals_are_for_the_patient_vitals_readers_guardians_and_read_proxies(
    state: State,
) -> None:
    with state.layer():
        _store_address_set(state, _vitals_readers_key(PATIENT), (READER,))
    assert vitals_access(state, PATIENT, PATIENT, NOW).basis == "owner"
    assert vitals_access(state, PATIENT, READER, NOW).basis == "vitals_reader"
    with pytest.raises(ReadNotAllowed, match="vitals readers"):
        vitals_access(state, PATIENT, PROXY, NOW)
    _proxy(state, (ProxyScope.DEVICES,))
    assert vitals_access(state, PATIENT, PROXY, NOW) == vitals_access(state, PATIENT, PROXY, 0)
    assert vitals_access(state, PATIENT, PROXY, NOW).on_behalf == PATIENT


def test_search_is_for_the_owner_read_proxies_and_registered_capability_holders(
    state: State,
) -> None:
    assert search_access(state, PATIENT, PATIENT, TREAT, NOW).basis == "owner"
    with pytest.raises(ReadNotAllowed, match="not a registered account"):
        search_access(state, PATIENT, STRANGER, TREAT, NOW)
    with state.layer():
        save(
            state,
            identity_key(STRANGER),
            Identity(STRANGER, b"k" * 32, b"e" * 32, Role.PATIENT, "s", b"", 1),
        )
    assert search_access(state, PATIENT, STRANGER, RESEARCH, NOW).basis == "reader"
    _proxy(state, (ProxyScope.READ,))
    access = search_access(state, PATIENT, PROXY, TREAT, NOW)
    assert (access.basis, access.on_behalf) == ("proxy", PATIENT)


def test_recovery_material_is_for_the_patient_and_their_guardians() -> None:
    policy = RecoveryPolicy(PATIENT, (PROXY, READER), 2, 0, "kit", b"h" * 32, (), 1)
    approval = RecoveryApproval(CLINICIAN, "share", b"h" * 32, 3)
    request = RecoveryRequest(
        b"r" * 16, PATIENT, b"", b"", b"", 2, 0, (approval,), 0, RecoveryStatus.OPEN, 0
    )
    assert recovery_access(policy, None, PATIENT, PATIENT).basis == "owner"
    assert recovery_access(policy, None, PATIENT, READER).basis == "proxy"
    assert recovery_access(None, request, PATIENT, CLINICIAN).on_behalf == PATIENT
    with pytest.raises(ReadNotAllowed, match="recovery guardians"):
        recovery_access(policy, request, PATIENT, STRANGER)
