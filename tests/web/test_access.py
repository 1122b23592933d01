"""The access page's data: a patient's proxies (and, on a proxy's own page, the
patients it acts for), the emergency policy in words, standing consents in force and
revoked; and the consent and proxy forms read, refused with what to fix."""

from __future__ import annotations

import pytest

from medchain.app import ProxyRelation, ProxyScope, PurposeOfUse
from medchain.client import add_proxy, set_up_emergency_policy
from medchain.crypto import format_address
from medchain.web import InvalidForm
from medchain.web._access import access_page, consent_from_form, proxy_from_form
from tests.web.conftest import DOCTOR_NAME, SECOND_DOCTOR_NAME, Ward

NOW = 1_800_000_000_000


def test_proxies_both_ways_emergency_and_consents(ward: Ward) -> None:
    patient = ward.client(ward.patient)
    add_proxy(patient, ward.second.address, ProxyRelation.CARER, (ProxyScope.READ,))
    set_up_emergency_policy(patient)
    treat = (PurposeOfUse.TREATMENT,)
    kept = patient.grant_consent(ward.doctor.address, ("Observation",), purposes=treat)
    gone = patient.grant_consent(ward.second.address, purposes=(PurposeOfUse.RESEARCH,))
    patient.revoke_consent(gone.consent.consent_id)

    found = access_page(patient, ward.patient.address, NOW)
    (proxy,) = found.proxies
    assert (proxy.name, proxy.relation, proxy.scopes, proxy.until) == (
        SECOND_DOCTOR_NAME,
        "carer",
        "read",
        "no end",
    )
    assert found.acting_for == ()
    assert found.emergency_on and found.emergency.startswith("On: a clinician may open")
    first, second = found.consents
    assert (first.consent_id, first.reader, first.covers, first.purposes) == (
        kept.consent.consent_id,
        DOCTOR_NAME,
        "Observation",
        "treatment",
    )
    assert first.in_force and first.state == "in force, no end"
    assert second.covers == "every record" and not second.in_force
    assert second.state.startswith("revoked at block ")

    carer = ward.client(ward.second)
    (acting,) = access_page(carer, ward.second.address, NOW).acting_for
    assert (acting.address, acting.relation) == (format_address(ward.patient.address), "carer")


def test_without_a_policy_emergency_access_is_off(ward: Ward) -> None:
    found = access_page(ward.client(ward.patient), ward.patient.address, NOW)
    assert not found.emergency_on and found.emergency.startswith("Off")
    assert found.proxies == () and found.consents == ()


def test_the_consent_form_is_read() -> None:
    reader = format_address(b"\x01" * 20)
    form = {
        "reader": reader,
        "types": " Observation, Condition ",
        "purpose-TREAT": "on",
        "purpose-HRESCH": "on",
    }
    assert consent_from_form(form) == (
        b"\x01" * 20,
        ("Observation", "Condition"),
        (PurposeOfUse.TREATMENT, PurposeOfUse.RESEARCH),
    )


@pytest.mark.parametrize(
    "form,message",
    [
        ({"purpose-TREAT": "on"}, "give the account's address"),
        ({"reader": "R", "types": "observations!", "purpose-TREAT": "on"}, "not a FHIR resource"),
        ({"reader": "R"}, "at least one purpose"),
    ],
)
def test_a_consent_form_that_cannot_be_granted_is_refused(
    form: dict[str, str], message: str
) -> None:
    form = {k: format_address(b"\x01" * 20) if v == "R" else v for k, v in form.items()}
    with pytest.raises(InvalidForm, match=message):
        consent_from_form(form)


def test_the_proxy_form_is_read_and_refused_without_a_scope() -> None:
    proxy = format_address(b"\x02" * 20)
    form = {"proxy": proxy, "relation": "parent", "scope-read": "on", "scope-devices": "on"}
    assert proxy_from_form(form) == (
        b"\x02" * 20,
        ProxyRelation.PARENT,
        (ProxyScope.READ, ProxyScope.DEVICES),
    )
    with pytest.raises(InvalidForm, match="how the proxy is related"):
        proxy_from_form({**form, "relation": "friend"})
    with pytest.raises(InvalidForm, match="at least one thing"):
        proxy_from_form({"proxy": proxy, "relation": "parent"})
