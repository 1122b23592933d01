"""A device's page over HTTP: the patient suspends, resumes and relabels a device and
retires it after the confirmation page, each change then in the audit trail; a form
without its token, a stranger's change and a change the chain refuses come back
refused, the chain's reason on the page."""

from __future__ import annotations

import httpx

from medchain.app import DeviceState
from medchain.client import HttpChain
from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.api.harness import admin
from tests.web.conftest import RunningApp, Ward, app_of
from tests.web.wearer import wear_device


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def _band(ward: Ward) -> bytes:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        return wear_device(ward, chain).keys.address


def _state(ward: Ward, device: bytes) -> DeviceState:
    chain = ward.client(ward.patient).chain
    found = chain.device(device)
    assert found is not None
    return found.state_at(chain.height)


def test_the_patient_suspends_resumes_and_relabels_a_device(ward: Ward) -> None:
    band = _band(ward)
    path = f"/devices/{format_address(band)}"
    with app_of(ward, ward.patient) as app, app.browser() as client:
        page = client.get(path).text
        forged = client.post(f"{path}/state", data={"action": "suspend", "reason": "lost"})
        suspended = _post(client, app, f"{path}/state", action="suspend", reason="lost it")
        after_suspend = client.get(suspended.headers["location"]).text
        resumed = _post(client, app, f"{path}/state", action="resume", reason="found it")
        relabelled = _post(client, app, f"{path}/label", label="left wrist")
        after = client.get(relabelled.headers["location"]).text
    assert 'value="suspend">Suspend</button>' in page and "Retire the device" in page
    assert 'value="resume"' not in page
    assert forged.status_code == 403 and _state(ward, band) is DeviceState.ACTIVE
    assert suspended.status_code == 303
    assert suspended.headers["location"] == f"{path}?done=suspend"
    assert "The device is suspended" in after_suspend and 'role="status"' in after_suspend
    assert "<td>state changed</td><td>you</td><td>restricted</td>" in after_suspend
    assert "<td>lost it</td>" in after_suspend
    assert 'value="resume">Resume</button>' in after_suspend
    assert resumed.status_code == relabelled.status_code == 303
    assert "The device has its new label." in after
    assert "<h1>left wrist" in after and "<td>relabelled</td>" in after
    assert "<td>found it</td>" in after and _state(ward, band) is DeviceState.ACTIVE


def test_retiring_needs_the_confirmation_page(ward: Ward) -> None:
    band = _band(ward)
    path = f"/devices/{format_address(band)}"
    with app_of(ward, ward.patient) as app, app.browser() as client:
        unconfirmed = _post(client, app, f"{path}/state", action="retire", reason="broken")
        still_active = _state(ward, band)
        confirm = client.get(f"{path}/retire").text
        retired = _post(
            client, app, f"{path}/state", action="retire", reason="broken", confirm="yes"
        )
        after = client.get(retired.headers["location"]).text
    assert unconfirmed.status_code == 400
    assert "confirm it on the retire page" in unconfirmed.text
    assert still_active is DeviceState.ACTIVE
    assert "cannot undo this" in confirm and 'name="confirm" value="yes"' in confirm
    assert retired.status_code == 303 and _state(ward, band) is DeviceState.BANNED
    assert "The device is retired" in after
    assert "only the organisation that registered it may lift that" in after
    assert 'value="suspend"' not in after


def test_a_stranger_is_refused_with_the_chains_reason(ward: Ward) -> None:
    band = _band(ward)
    patient = format_address(ward.patient.address)
    path = f"/devices/{format_address(band)}"
    with app_of(ward, ward.stranger) as app, app.browser() as client:
        answer = _post(
            client, app, f"{path}/state", action="suspend", reason="mine now", **{"for": patient}
        )
        relabel = _post(client, app, f"{path}/label", label="mine", **{"for": patient})
    assert answer.status_code == relabel.status_code == 403
    assert 'role="alert"' in answer.text
    assert "only the patient who owns device" in answer.text
    assert 'value="mine now"' in answer.text  # what was typed stays in the form
    assert "Traceback" not in answer.text
    assert _state(ward, band) is DeviceState.ACTIVE


def test_a_change_the_chain_refuses_comes_back_with_its_reason(ward: Ward) -> None:
    band = _band(ward)
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        admin(chain).set_device_state(band, DeviceState.RESTRICTED, "recalled")
    path = f"/devices/{format_address(band)}"
    with app_of(ward, ward.patient) as app, app.browser() as client:
        page = client.get(path).text
        resume = _post(client, app, f"{path}/state", action="resume", reason="mine")
        again = _post(client, app, f"{path}/state", action="suspend", reason="twice")
    assert "The organisation that registered the device restricted it" in page
    assert 'value="resume"' not in page
    assert resume.status_code == 403 and "ask the organisation that registered it" in resume.text
    assert again.status_code == 400 and "is already restricted" in again.text
    assert _state(ward, band) is DeviceState.RESTRICTED


def test_a_guardian_suspends_the_patients_device_for_them(ward: Ward) -> None:
    band = _band(ward)
    ward.client(ward.patient).add_guardian(ward.second.address)
    patient = format_address(ward.patient.address)
    path = f"/devices/{format_address(band)}"
    with app_of(ward, ward.second) as app, app.browser() as client:
        page = client.get(path, params={"for": patient}).text
        answer = _post(
            client, app, f"{path}/state", action="suspend", reason="on holiday", **{"for": patient}
        )
        after = client.get(answer.headers["location"]).text
    assert f'<input type="hidden" name="for" value="{patient}">' in page
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{path}?done=suspend&for={patient}"
    assert "The device is suspended" in after and "<td>you for " in after
    assert _state(ward, band) is DeviceState.RESTRICTED


def test_a_retired_device_has_no_retire_form(ward: Ward) -> None:
    band = _band(ward)
    ward.client(ward.patient).set_device_state(band, DeviceState.BANNED, "broken")
    with app_of(ward, ward.patient) as app, app.browser() as client:
        page = client.get(f"/devices/{format_address(band)}/retire").text
    assert 'name="confirm"' not in page
    assert "only the organisation that registered it may lift that" in page
