"""The patient's own pages over HTTP: the vitals chart of a device's readings (a bad
range refused with its reason), the devices and a device's audit trail, and
guardians added and removed through the forms, refused without the form's token."""

from __future__ import annotations

import httpx

from medchain.client import HttpChain
from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.web.conftest import SECOND_DOCTOR_NAME, RunningApp, Ward, app_of
from tests.web.wearer import hours_ago, send_readings, wear_device


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def test_the_vitals_page_draws_a_devices_readings_and_refuses_a_bad_range(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        send_readings(chain, wear_device(ward, chain), 12, hours_ago(2))
    with app_of(ward, ward.patient) as app, app.browser() as client:
        page = client.get("/vitals", params={"range": "week"})
        bad = client.get("/vitals", params={"range": "custom", "from": "2024-05-02", "to": "x"})
    assert page.status_code == 200
    assert "12 readings from" in page.text
    assert '<polyline class="mean" points="' in page.text
    assert 'value="week" checked' in page.text
    assert bad.status_code == 400 and "as dates, e.g. 2024-05-01" in bad.text


def test_the_devices_page_links_each_devices_trail(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = format_address(wear_device(ward, chain).keys.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        devices = client.get("/devices").text
        trail = client.get(f"/devices/{band}").text
        missing = client.get(f"/devices/{format_address(ward.stranger.address)}")
    assert f'<a href="/devices/{band}">a band</a>' in devices
    assert "<td>registered</td>" in trail and "<dd>active</dd>" in trail
    assert missing.status_code == 400 and "is not one of this patient&#39;s devices" in missing.text


def test_a_guardian_is_added_and_removed_through_the_forms(ward: Ward) -> None:
    second = format_address(ward.second.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        forged = client.post("/guardians/add", data={"guardian": second})
        added = _post(client, app, "/guardians/add", guardian=second)
        listed = client.get("/devices").text
        removed = _post(client, app, "/guardians/remove", guardian=second)
        after = client.get("/devices").text
    assert forged.status_code == 403
    assert added.status_code == removed.status_code == 303
    assert f"Remove guardian {SECOND_DOCTOR_NAME}" in listed
    assert SECOND_DOCTOR_NAME not in after and "No guardians." in after
    assert ward.client(ward.patient).chain.guardians_of(ward.patient.address) == ()
