"""The app's door, on a running app: nothing without the printed link's token; the
token becomes an HTTP-only, SameSite=Strict cookie and leaves the URL; changes need
the form's synchroniser token and this app as their origin; every answer carries the
security headers."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from medchain.crypto import format_address
from medchain.web import CSRF_FIELD, SESSION_COOKIE
from tests.web.conftest import RunningApp, Ward, app_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("path", ["/", "/accounts", "/blocks/0", "/events", "/static/app.css"])
def test_every_route_refuses_a_request_without_the_session(explorer: RunningApp, path: str) -> None:
    answer = httpx.get(explorer.url + path)
    assert answer.status_code == 401
    assert "Open the link the app printed" in answer.text


def test_a_wrong_token_opens_nothing(explorer: RunningApp) -> None:
    with httpx.Client(base_url=explorer.url) as client:
        answer = client.get("/?token=" + "x" * 43)
        assert answer.status_code == 401
        assert not client.cookies
        assert client.get("/").status_code == 401


def test_the_token_becomes_a_strict_http_only_cookie_and_leaves_the_url(
    explorer: RunningApp,
) -> None:
    with httpx.Client(base_url=explorer.url) as client:
        answer = client.get(f"/accounts?role=doctor&token={explorer.keys.url_token}")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/accounts?role=doctor"
        cookie = answer.headers["set-cookie"].lower()
        assert cookie.startswith(f"{SESSION_COOKIE}_{explorer.port}=")
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert explorer.keys.url_token not in cookie
        page = client.get(answer.headers["location"])
        assert page.status_code == 200
        assert "Accounts: doctor" in page.text


def test_answers_carry_a_strict_content_security_policy(explorer: RunningApp) -> None:
    with explorer.browser() as client:
        for path in ("/", "/static/live.js"):
            headers = client.get(path).headers
            policy = headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"


def test_a_page_has_no_inline_script(explorer: RunningApp) -> None:
    with explorer.browser() as client:
        page = client.get("/").text
    assert '<script src="/static/live.js" defer></script>' in page
    assert "<script>" not in page


def test_a_request_for_another_host_name_is_refused(explorer: RunningApp) -> None:
    """A DNS-rebound name pointing at 127.0.0.1 does not reach the app."""
    with explorer.browser() as client:
        answer = client.get("/", headers={"host": f"attacker.example:{explorer.port}"})
    assert answer.status_code == 421


def _record_for(ward: Ward) -> bytes:
    doctor = ward.client(ward.doctor)
    condition = json.loads((EXAMPLES / "condition.json").read_text())
    return doctor.put_record(ward.patient.address, condition)


def _readers(ward: Ward, record_id: bytes) -> tuple[bytes, ...]:
    return ward.client(ward.patient).record(record_id).readers


def _grant_form(app: RunningApp, ward: Ward, **override: str) -> dict[str, str]:
    form = {CSRF_FIELD: app.keys.csrf, "reader": format_address(ward.second.address)}
    form.update(override)
    return form


def test_a_cross_site_post_is_refused_and_changes_nothing(ward: Ward) -> None:
    record_id = _record_for(ward)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        path = f"/records/{record_id.hex()}/grant"
        evil = client.post(
            path, data=_grant_form(app, ward), headers={"origin": "https://evil.example"}
        )
        no_origin = client.post(path, data=_grant_form(app, ward))
        assert (evil.status_code, no_origin.status_code) == (403, 403)
        assert ward.second.address not in _readers(ward, record_id)


def test_a_post_without_the_form_token_is_refused(ward: Ward) -> None:
    record_id = _record_for(ward)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        answer = client.post(
            f"/records/{record_id.hex()}/grant",
            data=_grant_form(app, ward, csrf="stale"),
            headers={"origin": app.url},
        )
        assert answer.status_code == 403
        assert ward.second.address not in _readers(ward, record_id)
        granted = client.post(
            f"/records/{record_id.hex()}/grant",
            data=_grant_form(app, ward),
            headers={"origin": app.url},
        )
        assert granted.status_code == 303
        assert ward.second.address in _readers(ward, record_id)


def test_no_page_holds_the_private_key(ward: Ward) -> None:
    record_id = _record_for(ward)
    secrets = [ward.patient.signing_seed, ward.patient.encryption_secret]
    shown = {
        form
        for secret in secrets
        for form in (
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode().rstrip("="),
        )
    }
    with app_of(ward, ward.patient) as app, app.browser() as client:
        pages = [client.get(p).text for p in ("/", f"/records/{record_id.hex()}", "/?page=2")]
    assert all(form not in page for page in pages for form in shown)
    assert "Jane Roe" in pages[0]


@pytest.mark.parametrize("path", ["/fhirx", "/records/00", "/static/app.css", "/events"])
def test_the_fhir_bearer_token_opens_only_fhir(explorer: RunningApp, path: str) -> None:
    bearer = {"authorization": f"Bearer {explorer.keys.fhir}"}
    assert httpx.get(explorer.url + path, headers=bearer).status_code == 401
