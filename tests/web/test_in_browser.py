"""The web app in a real headless Chromium, against a node's API: the story issue 18
asks for (a doctor adds vital signs through the form, the patient sees them rendered,
grants a second doctor by name, that doctor sees them, the patient revokes and the
second doctor cannot read the new version), the explorer's live blocks and its
anchors' verification state, and the door refusing a browser without the token and a
post from another site. axe-core checks every page; the main pages are photographed
into docs/img/."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from medchain.client import HttpChain
from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.web.browser import PHONE, check_page, watched
from tests.web.conftest import SECOND_DOCTOR_NAME, RunningApp, Ward, app_of, running

pytestmark = pytest.mark.slow


def _heart_rate(value: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4"}],
            "text": "Heart rate",
        },
        "valueQuantity": {"value": value, "unit": "/min"},
    }


def _doctor_adds_heart_rate(page: Page, errors: list[str], app: RunningApp, patient: str) -> None:
    page.goto(app.login_url)
    page.get_by_label("Patient address (or part of it)").fill(patient[-12:])
    page.get_by_role("button", name="Search").click()
    check_page(page, errors, "clinician-patients.png")
    page.get_by_role("link", name=patient).click()
    page.get_by_role("link", name="Add vital signs").click()
    page.get_by_label("Measurement").select_option("heart-rate")
    page.get_by_label("Value").fill("72")
    check_page(page, errors, "clinician-vitals-form.png")
    page.get_by_role("button", name="Seal the reading").click()
    expect(page.get_by_text("72 /min")).to_be_visible()


def _patient_grants(page: Page, errors: list[str], app: RunningApp) -> str:
    """The patient opens the new record, its JSON, and grants the second doctor."""
    page.goto(app.login_url)
    expect(page.get_by_text("72 /min")).to_be_visible()
    assert "resourceType" not in page.content()
    check_page(page, errors, "patient-timeline.png")
    page.get_by_role("link", name="Heart rate").click()
    page.get_by_text("Show the FHIR JSON").click()
    expect(page.locator("pre.json")).to_contain_text('"valueQuantity"')
    page.get_by_label("Clinician or organisation name").fill("Osei")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Grant {SECOND_DOCTOR_NAME}").click()
    expect(page.get_by_role("button", name=f"Revoke {SECOND_DOCTOR_NAME}")).to_be_visible()
    check_page(page, errors, "patient-record.png")
    return page.url


def test_vitals_from_the_form_are_shared_and_unshared(ward: Ward, browser: BrowserContext) -> None:
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as doctor, app_of(ward, ward.patient) as mine:
        page = browser.new_page()
        errors = watched(page)
        _doctor_adds_heart_rate(page, errors, doctor, patient)
        record_url = _patient_grants(page, errors, mine)
        record_path = record_url.removeprefix(mine.url)
        with app_of(ward, ward.second) as theirs:
            second = browser.new_page()
            second_errors = watched(second)
            second.goto(theirs.login_url)
            second.goto(f"{theirs.url}{record_path}")
            expect(second.get_by_text("72 /min")).to_be_visible()
            check_page(second, second_errors)
            page.get_by_role("button", name=f"Revoke {SECOND_DOCTOR_NAME}").click()
            expect(page.get_by_role("button", name=f"Revoke {SECOND_DOCTOR_NAME}")).to_have_count(0)
            record_id = bytes.fromhex(record_path.rsplit("/", 1)[1])
            ward.client(ward.doctor).add_version(record_id, _heart_rate(80))
            second.reload()
            expect(second.get_by_text("This record is not shared with you.")).to_be_visible()
            assert "80 /min" not in second.content()
        page.reload()
        expect(page.get_by_text("80 /min")).to_be_visible()


def test_the_timeline_fits_a_phone(ward: Ward, browser: BrowserContext) -> None:
    for value in (64, 71):
        ward.doctor_writes(_heart_rate(value))
    ward.doctor_writes()
    with app_of(ward, ward.patient) as mine:
        page = browser.new_page()
        page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        errors = watched(page)
        page.goto(mine.login_url)
        expect(page.get_by_text("71 /min")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        check_page(page, errors, "patient-timeline-phone.png")


def test_the_explorer_shows_a_new_block_live(
    ward: Ward, explorer: RunningApp, browser: BrowserContext
) -> None:
    page = browser.new_page()
    errors = watched(page)
    page.goto(explorer.login_url)
    expect(page.locator("#blocks tbody[data-live=open]")).to_have_count(1)
    expect(page.locator("#anchor-state")).to_contain_text("verified up to height 10")
    check_page(page, errors, "explorer.png")
    ward.doctor_writes()
    with HttpChain(ward.node.url) as chain:
        committed = chain.latest_block().height
    new_row = page.locator(f'#blocks a[href="/blocks/{committed}"]')
    expect(new_row).to_be_visible()  # pushed to the open page: it is never reloaded
    expect(page.locator("#height")).to_have_text(str(committed))
    new_row.click()
    expect(page.get_by_role("heading", name="records.create")).to_be_visible()
    check_page(page, errors, "explorer-block.png")
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", name="Accounts: patient (4)")).to_be_visible()
    check_page(page, errors, "explorer-accounts.png")


def _evil_site(target: str, form: dict[str, str]) -> Starlette:
    """A page of another site (another origin on this machine) with a form posting to
    the app: the attacker knows everything but cannot make the browser say it is the app."""
    fields = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in form.items())
    html = (
        '<!doctype html><html lang="en"><head><title>Prize</title></head><body><main>'
        f'<form method="post" action="{target}">{fields}<button>Win a prize</button></form>'
        "</main></body></html>"
    )

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(html)

    return Starlette(routes=[Route("/", page)])


def test_the_app_refuses_a_browser_without_its_token_and_another_sites_post(
    ward: Ward, browser: BrowserContext
) -> None:
    record_id = ward.doctor_writes()
    with app_of(ward, ward.patient) as mine:
        form = {CSRF_FIELD: mine.keys.csrf, "reader": format_address(ward.second.address)}
        target = f"{mine.url}/records/{record_id.hex()}/grant"
        with running(lambda port, keys: _evil_site(target, form)) as evil:
            page = browser.new_page()
            answer = page.goto(mine.url + "/")
            assert answer is not None and answer.status == 401
            expect(
                page.get_by_role("heading", name="Open the link the app printed")
            ).to_be_visible()
            page.goto(mine.login_url)
            page.goto(evil.url + "/")
            page.get_by_role("button", name="Win a prize").click()
            expect(
                page.get_by_text("A change must come from this app's own pages.")
            ).to_be_visible()
    assert ward.second.address not in ward.client(ward.patient).record(record_id).readers
