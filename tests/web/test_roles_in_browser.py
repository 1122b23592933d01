"""The clinician's, the research organisation's and the explorer's added pages in a
real headless Chromium: a clinician finds the patient they wrote for, searches their
index, writes a new version and breaks the glass; a patient suspends and resumes a
device and shares their vitals with a doctor by name, whose chart then draws them; a
research organisation sees its copies by type; the explorer lists what waits in the
mempool. axe-core checks every page (no serious or critical violation) and the console
must stay clean."""

from __future__ import annotations

import asyncio
import json

import pytest
from playwright.sync_api import BrowserContext, expect

from medchain.app import RegisterArgs, Role
from medchain.client import HttpChain, set_up_emergency_policy
from medchain.crypto import AccountKeys, format_address
from medchain.web._clinician import keywords_for
from tests.api.harness import RESEARCH, signed
from tests.web.browser import check_page, watched
from tests.web.conftest import DOCTOR_NAME, EXAMPLES, RunningApp, Ward, app_of
from tests.web.test_break_glass import answer_all, penicillin_allergy
from tests.web.wearer import hours_ago, send_readings, wear_device

pytestmark = pytest.mark.slow


def test_a_clinician_searches_updates_and_breaks_the_glass(
    ward: Ward, browser: BrowserContext
) -> None:
    condition = json.loads((EXAMPLES / "condition.json").read_text())
    doctor = ward.client(ward.doctor)
    doctor.put_record(ward.patient.address, condition, keywords=keywords_for(condition))
    patient_client = ward.client(ward.patient)
    patient_client.put_record(ward.patient.address, penicillin_allergy())
    set_up_emergency_policy(patient_client)
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as app:
        page = browser.new_page()
        errors = watched(page)
        page.goto(app.login_url)
        expect(page.get_by_text("you wrote records for them")).to_be_visible()
        check_page(page, errors, "clinician-my-patients.png")
        page.get_by_role("link", name="Search").click()
        page.get_by_label("Word or phrase").fill("type 2 diabetes mellitus")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="Type 2 diabetes mellitus").click()
        page.get_by_role("link", name="Write a new version").click()
        edited = {**condition, "code": {"text": "Type 2 diabetes, controlled"}}
        page.get_by_label("FHIR resource (JSON)").fill(json.dumps(edited))
        check_page(page, errors, "clinician-update.png")
        page.get_by_role("button", name="Seal the new version").click()
        expect(page.get_by_role("heading", name="Type 2 diabetes, controlled")).to_be_visible()
        page.goto(f"{app.url}/patients/{patient}")
        page.get_by_role("link", name="Emergency access").click()
        page.get_by_label("Reason (recorded on chain; the patient sees it)").fill("unconscious")
        page.get_by_role("button", name="Request emergency access").click()
        expect(page.get_by_text("0 of the 2 needed")).to_be_visible()
        check_page(page, errors)
        answer_all(ward)
        page.reload()
        expect(page.get_by_text("Penicillin")).to_be_visible()
        check_page(page, errors, "clinician-emergency.png")


def test_a_patient_suspends_a_device_and_shares_vitals_with_a_doctor(
    ward: Ward, browser: BrowserContext
) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain)
    with app_of(ward, ward.patient) as app:
        page = browser.new_page()
        errors = watched(page)
        page.goto(app.login_url)
        page.get_by_role("link", name="My devices").click()
        page.get_by_role("link", name="a band").click()
        check_page(page, errors)
        page.get_by_label("Reason").fill("left it at the gym")
        page.get_by_role("button", name="Suspend", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("The device is suspended")
        expect(page.get_by_role("cell", name="left it at the gym")).to_be_visible()
        check_page(page, errors, "patient-device-suspended.png")
        page.get_by_label("Reason").fill("found it")
        page.get_by_role("button", name="Resume", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("The device is active again")
        page.get_by_role("link", name="Retire the device").click()
        expect(page.get_by_text("cannot undo this")).to_be_visible()
        check_page(page, errors)
        page.get_by_role("link", name="Keep the device").click()
        page.get_by_role("link", name="My vitals").click()
        page.get_by_role("link", name="Who may read my vitals").click()
        page.get_by_label("Clinician or organisation name").fill("Quill")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("button", name=f"Share my vitals with {DOCTOR_NAME}").click()
        expect(page.get_by_role("button", name=f"Stop sharing with {DOCTOR_NAME}")).to_be_visible()
        check_page(page, errors, "patient-vitals-sharing.png")
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        send_readings(chain, band, 6, hours_ago(1))
    with app_of(ward, ward.doctor) as app:
        page = browser.new_page()
        errors = watched(page)
        page.goto(app.login_url)
        page.goto(f"{app.url}/patients/{format_address(ward.patient.address)}")
        page.get_by_role("link", name="Vitals from devices").click()
        expect(page.locator("#vitals-count")).to_contain_text("6 readings from")
        expect(page.get_by_role("img", name="Heart rate")).to_be_visible()
        check_page(page, errors, "clinician-shared-vitals.png")


def test_research_copies_and_the_mempool(
    ward: Ward, explorer: RunningApp, browser: BrowserContext
) -> None:
    record_id = ward.doctor_writes()
    ward.client(ward.patient).research_grant(record_id, RESEARCH.account.address)
    with app_of(ward, RESEARCH.account) as lab:
        page = browser.new_page()
        errors = watched(page)
        page.goto(lab.login_url)
        expect(page.get_by_role("cell", name="Condition")).to_be_visible()
        expect(page.get_by_role("link", name="Download all as FHIR NDJSON")).to_be_visible()
        check_page(page, errors, "research.png")
    ward.node.node.auto_commit = False
    keys = AccountKeys.generate()
    tx = signed(
        keys, 0, "registry.register", RegisterArgs(Role.PATIENT, "", keys.encryption_public_key)
    )
    assert asyncio.run_coroutine_threadsafe(ward.node.node.submit(tx), ward.node.loop).result(30)
    page = browser.new_page()
    errors = watched(page)
    page.goto(explorer.login_url)
    page.get_by_role("link", name="Mempool").first.click()
    expect(page.get_by_role("cell", name="registry.register")).to_be_visible()
    check_page(page, errors, "explorer-mempool.png")
