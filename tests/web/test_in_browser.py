"""The web app in a real headless Chromium, against a node's API: the story issue 18
asks for (a doctor adds vital signs and a condition through the forms, the patient sees
them rendered, grants a second doctor by name, that doctor sees them, the patient
revokes and the second doctor cannot read the new version, then shares a de-identified
copy with a research organisation found by name and revokes it), the explorer's live
blocks, its edge gateways and device counts redrawn live, and its anchors'
verification state, and the door refusing a browser without the token and a post from
another site. axe-core checks every page; the main pages are photographed into
docs/img/."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from medchain.client import HttpChain
from medchain.crypto import AccountKeys, format_address
from medchain.web import CSRF_FIELD
from tests.api.harness import RESEARCH, admin
from tests.web.browser import PHONE, check_page, watched
from tests.web.conftest import DOCTOR_NAME, SECOND_DOCTOR_NAME, RunningApp, Ward, app_of, running
from tests.web.wearer import hours_ago, send_readings, sent_values, wear_device

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


def _doctor_adds_a_condition(page: Page, errors: list[str]) -> None:
    """From the patient's records, through "Add a record", to the timeline showing it."""
    page.get_by_role("link", name="Add a record").click()
    check_page(page, errors)
    page.get_by_role("link", name="Add a condition").click()
    page.get_by_label("Condition", exact=True).select_option(label="Asthma")
    page.get_by_label("Clinical status").select_option("active")
    page.get_by_label("Onset date (optional)").fill("2020-05-01")
    check_page(page, errors, "clinician-add-condition.png")
    page.get_by_role("button", name="Seal the condition").click()
    expect(page.get_by_role("link", name="Asthma")).to_be_visible()
    check_page(page, errors)


def _patient_grants(page: Page, errors: list[str], app: RunningApp) -> str:
    """The patient opens the new record, its JSON, and grants the second doctor."""
    page.goto(app.login_url)
    expect(page.get_by_text("72 /min")).to_be_visible()
    expect(page.get_by_role("link", name="Asthma")).to_be_visible()
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


def _patient_shares_for_research(page: Page, errors: list[str]) -> None:
    """On the record's page, the patient finds the research organisation by name,
    shares a de-identified copy, then revokes it."""
    name = RESEARCH.genesis().name
    page.get_by_label("Research organisation name").fill("research")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("button", name=f"Share a de-identified copy with {name}").click()
    revoke = page.get_by_role("button", name=f"Revoke the research copy of {name}")
    expect(revoke).to_be_visible()
    check_page(page, errors, "patient-research-copies.png")
    revoke.click()
    expect(
        page.get_by_text("No research organisation holds a copy of this record.")
    ).to_be_visible()


def test_vitals_from_the_form_are_shared_and_unshared(ward: Ward, browser: BrowserContext) -> None:
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as doctor, app_of(ward, ward.patient) as mine:
        page = browser.new_page()
        errors = watched(page)
        _doctor_adds_heart_rate(page, errors, doctor, patient)
        _doctor_adds_a_condition(page, errors)
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
        _patient_shares_for_research(page, errors)


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


def test_the_vitals_chart_draws_what_a_device_sent_and_its_trail_shows(
    ward: Ward, browser: BrowserContext
) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        sent = send_readings(chain, wear_device(ward, chain), 90, hours_ago(20), every_ms=600_000)
    values = sent_values(sent)
    with app_of(ward, ward.patient) as mine:
        page = browser.new_page()
        errors = watched(page)
        page.goto(mine.login_url)
        page.get_by_role("link", name="My vitals").click()
        page.get_by_label("Last week").check()
        page.get_by_role("button", name="Show").click()
        chart = page.get_by_role("img", name="Heart rate, /min")
        expect(chart).to_be_visible()
        expect(page.locator("#vitals-count")).to_contain_text("90 readings")
        points = page.locator("svg polyline.mean").get_attribute("points") or ""
        rows = page.locator("details table tbody tr")
        assert len(points.split()) == rows.count() > 1  # a point a period, no more
        assert sum(int(n) for n in rows.locator("td:nth-child(2)").all_text_contents()) == 90
        lowest = min(float(t) for t in rows.locator("td:nth-child(3)").all_text_contents())
        highest = max(float(t) for t in rows.locator("td:nth-child(5)").all_text_contents())
        assert (lowest, highest) == (min(values), max(values))
        expect(chart.locator("desc")).to_contain_text(f"lowest {min(values):g}")
        check_page(page, errors, "patient-vitals.png")
        page.get_by_role("link", name="My devices").click()
        expect(page.locator("#devices")).to_contain_text("heart rate")
        check_page(page, errors)
        page.get_by_role("link", name="a band").click()
        expect(page.get_by_role("cell", name="registered", exact=True)).to_be_visible()
        check_page(page, errors, "patient-device.png")


def _patient_names_a_proxy(page: Page, errors: list[str], app: RunningApp, proxy: str) -> None:
    page.goto(app.login_url)
    page.get_by_role("link", name="Access").click()
    page.get_by_label("The proxy's address (mc1…)").fill(proxy)
    page.get_by_label("Relation").select_option("parent")
    page.get_by_label("share them and set consents").check()
    page.get_by_role("button", name="Add the proxy").click()
    expect(page.get_by_role("button", name=f"Remove proxy {SECOND_DOCTOR_NAME}")).to_be_visible()
    page.get_by_role("button", name="Turn emergency access on").click()
    expect(page.locator("#emergency-state")).to_contain_text("On: a clinician may open")
    check_page(page, errors, "patient-access.png")
    page.get_by_role("link", name="Notices").click()
    expect(page.locator("#notices")).to_contain_text(f"{SECOND_DOCTOR_NAME} became a proxy")
    check_page(page, errors)
    page.get_by_role("link", name="Who read what").click()
    expect(page.get_by_role("heading", name="Who read my data")).to_be_visible()
    check_page(page, errors)


def test_a_proxy_switches_to_the_patient_and_grants_a_consent_for_them(
    ward: Ward, browser: BrowserContext
) -> None:
    doctor = format_address(ward.doctor.address)
    with app_of(ward, ward.patient) as mine:
        page = browser.new_page()
        errors = watched(page)
        _patient_names_a_proxy(page, errors, mine, format_address(ward.second.address))
    with app_of(ward, ward.second) as theirs:
        page.goto(theirs.login_url)
        page.get_by_role("link", name="Access").click()
        page.locator("#acting-for").get_by_role("link").click()  # the patient switcher
        expect(page.get_by_role("navigation", name="Acting for")).to_contain_text("You act for")
        page.get_by_label("The reader's address (mc1…)").fill(doctor)
        page.get_by_label("Kinds of record, separated by commas").fill("Observation")
        page.get_by_role("button", name="Grant the consent").click()
        revoke = page.get_by_role("button", name=f"Revoke consent 1 of {DOCTOR_NAME}")
        expect(revoke).to_be_visible()
        check_page(page, errors, "proxy-access.png")
        revoke.click()
        expect(page.locator("#consent-list")).to_contain_text("revoked at block")
    (consent,) = ward.client(ward.patient).consents()
    assert consent.granted_by == ward.second.address and consent.revoked_height > 0


def test_the_explorer_shows_a_new_block_live(
    ward: Ward, explorer: RunningApp, browser: BrowserContext
) -> None:
    page = browser.new_page()
    errors = watched(page)
    page.goto(explorer.login_url)
    expect(page.locator("#blocks tbody[data-live=open]")).to_have_count(1)
    expect(page.locator("#anchor-state")).to_contain_text("verified up to height 10")
    expect(page.locator("#device-counts")).to_contain_text("No devices registered.")
    check_page(page, errors)
    with HttpChain(ward.node.url) as chain:
        admin(chain).register_gateway(AccountKeys.generate().address, "ward 3")
        wear_device(ward, chain)
    # the edge tier's section is redrawn on the open page: it is never reloaded
    expect(page.locator("#gateways")).to_contain_text("ward 3")
    expect(page.locator("#device-total")).to_have_text("1")
    heart_rate = page.locator("#device-counts tbody tr", has_text="heart rate")
    expect(heart_rate.locator("td").first).to_have_text("1")  # active
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
    page.get_by_role("link", name="Gateways").click()
    expect(page.get_by_role("heading", name="Edge gateways (1)")).to_be_visible()
    expect(page.get_by_role("cell", name="ward 3")).to_be_visible()
    check_page(page, errors, "explorer-gateways.png")


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
