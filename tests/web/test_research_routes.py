"""A research organisation's pages over HTTP: its holdings by type, the NDJSON
download, and neither without the app's session."""

from __future__ import annotations

import json

import httpx

from medchain.web._pages import templates
from medchain.web._research import Holdings
from tests.api.harness import RESEARCH
from tests.web.conftest import Ward, app_of


def test_the_institution_sees_counts_and_rendered_copies(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    ward.client(ward.patient).research_grant(record_id, RESEARCH.account.address)
    with app_of(ward, RESEARCH.account) as app, app.browser() as client:
        home = client.get("/").text
        export = client.get("/research/export.ndjson")
    assert "<td>Condition</td><td>1</td>" in home
    assert "Type 2 diabetes mellitus" in home
    assert "resourceType" not in home
    assert 'href="/research/export.ndjson"' in home
    assert export.headers["content-type"].startswith("application/fhir+ndjson")
    assert "attachment" in export.headers["content-disposition"]
    (line,) = export.text.splitlines()
    assert json.loads(line)["id"] == record_id.hex()


def test_the_export_needs_the_session(ward: Ward) -> None:
    with app_of(ward, RESEARCH.account) as app:
        refused = httpx.get(f"{app.url}/research/export.ndjson")
    assert refused.status_code == 401


def test_a_patient_has_no_research_pages(ward: Ward) -> None:
    with app_of(ward, ward.patient) as app, app.browser() as client:
        assert client.get("/research/export.ndjson").status_code == 404
        assert "My records" in client.get("/").text


def test_the_pager_links_the_newer_and_older_pages() -> None:
    middle = Holdings(counts=(("Condition", 45),), copies=(), page=2, pages=3, total=45)
    html = templates.get_template("research.html").render(holdings=middle, me={}, mode="")
    assert '<a href="?page=1">Newer</a>' in html
    assert '<a href="?page=3">Older</a>' in html
    last = Holdings(counts=(), copies=(), page=3, pages=3, total=45)
    assert "Older" not in templates.get_template("research.html").render(holdings=last)
