"""ReaderGrant terms: a listed reader's stored or default terms, and when they allow a read."""

from __future__ import annotations

from medchain.app import (
    DEFAULT_GRANT_PURPOSES,
    PurposeOfUse,
    ReaderGrant,
    delete_reader_grant,
    get_reader_grant,
    grant_in_force,
    put_reader_grant,
    reader_grant,
)
from medchain.app._state import State

RECORD = bytes(range(16))
READER = b"\x11" * 20
OTHER = b"\x22" * 20


def test_a_stored_grant_round_trips_and_is_deleted() -> None:
    state = State()
    grant = ReaderGrant(RECORD, READER, (PurposeOfUse.RESEARCH,), 5_000, 7)
    with state.layer():
        put_reader_grant(state, grant)
        assert get_reader_grant(state, RECORD, READER) == grant
        assert reader_grant(state, RECORD, (READER,), READER) == grant
        delete_reader_grant(state, RECORD, READER)
        assert get_reader_grant(state, RECORD, READER) is None


def test_a_listed_reader_without_terms_has_the_default_and_a_stranger_none() -> None:
    state = State()
    default = reader_grant(state, RECORD, (READER,), READER)
    assert default is not None
    assert default.purposes == DEFAULT_GRANT_PURPOSES and default.expires_ms == 0
    assert reader_grant(state, RECORD, (READER,), OTHER) is None


def test_a_grant_is_in_force_until_its_expiry_and_for_its_purposes_only() -> None:
    grant = ReaderGrant(RECORD, READER, (PurposeOfUse.TREATMENT,), 1_000, 1)
    assert grant_in_force(grant, 999)
    assert grant_in_force(grant, 999, PurposeOfUse.TREATMENT)
    assert not grant_in_force(grant, 999, PurposeOfUse.PAYMENT)
    assert not grant_in_force(grant, 1_000)
    forever = ReaderGrant(RECORD, READER, (PurposeOfUse.TREATMENT,), 0, 1)
    assert grant_in_force(forever, 2**62)
