"""The explorer's pages, and its feed announcing each new block as it is committed."""

from __future__ import annotations

import json
import time

import httpx

from medchain.anchor import Mismatch
from medchain.client import HttpChain
from medchain.crypto import AccountKeys, format_address
from medchain.web import explorer_app
from tests.api.harness import admin, make_chain, served
from tests.web.conftest import AnchoringNode, RunningApp, Ward, running, verified_report
from tests.web.wearer import wear_device

FEED_DEADLINE_S = 30.0
"""Generous: the feed polls every 0.2 s, but the machine may be busy."""


def test_the_home_page_shows_consensus_blocks_validators_and_anchors(
    ward: Ward, explorer: RunningApp
) -> None:
    with HttpChain(ward.node.url) as chain:
        height = chain.latest_block().height
    with explorer.browser() as client:
        page = client.get("/").text
    assert f'<dd id="height">{height}</dd>' in page
    assert f'<a href="/blocks/{height}">{height}</a>' in page
    assert "<td>v0</td>" in page
    assert "primary this round" in page
    assert (
        '<dd id="anchor-state">verified up to height 10; 1 invalid anchors ignored; 1 pending'
        in page
    )
    assert "Alarm" not in page


def test_a_block_page_and_a_missing_block(ward: Ward, explorer: RunningApp) -> None:
    ward.doctor_writes()
    with HttpChain(ward.node.url) as chain:
        height = chain.latest_block().height
    with explorer.browser() as client:
        page = client.get(f"/blocks/{height}")
        missing = client.get(f"/blocks/{height + 50}")
    assert page.status_code == 200
    assert "<h3>records.create</h3>" in page.text
    assert '<dd class="addr">Condition</dd>' in page.text
    assert missing.status_code == 404
    assert f"no block at height {height + 50}" in missing.text


def test_accounts_by_role_and_a_bad_role(explorer: RunningApp) -> None:
    with explorer.browser() as client:
        doctors = client.get("/accounts?role=patient").text
        bad = client.get("/accounts?role=wizard")
    assert "Accounts: patient (" in doctors
    assert bad.status_code == 400


def test_the_feed_announces_a_new_block(ward: Ward, explorer: RunningApp) -> None:
    with explorer.browser() as client, client.stream("GET", "/events") as feed:
        assert feed.headers["content-type"].startswith("text/event-stream")
        lines = feed.iter_lines()
        assert next(lines).startswith("retry:")
        ward.doctor_writes()
        with HttpChain(ward.node.url) as chain:
            committed = chain.latest_block().height
        deadline = time.monotonic() + FEED_DEADLINE_S
        seen: list[int] = []
        while committed not in seen and time.monotonic() < deadline:
            line = next(lines)
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["height"])
    assert committed in seen
    assert seen == sorted(seen)


def test_the_explorer_accepts_no_post(explorer: RunningApp) -> None:
    with explorer.browser() as client:
        answer = client.post("/", headers={"origin": explorer.url})
    assert answer.status_code == 405
    assert httpx.codes.is_client_error(answer.status_code)


def test_the_feed_starts_after_the_height_the_page_was_drawn_at(
    ward: Ward, explorer: RunningApp
) -> None:
    """A block committed between drawing the page and opening the feed still comes."""
    with HttpChain(ward.node.url) as chain:
        drawn = chain.latest_block().height
    ward.doctor_writes()
    with explorer.browser() as client, client.stream("GET", f"/events?after={drawn}") as feed:
        lines = feed.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
    assert json.loads(first[6:])["height"] == drawn + 1


def test_an_anchor_alarm_is_announced() -> None:
    forged = Mismatch(8, "state_root", b"\x01" * 32, b"\x02" * 32, "rewritten")
    with (
        served(lambda: AnchoringNode(make_chain(), verified_report(forged))) as node,
        running(lambda port, keys: explorer_app(lambda: HttpChain(node.url), port, keys)) as app,
        app.browser() as client,
    ):
        page = client.get("/").text
    assert (
        '<p class="alarm" role="alert">Alarm: the chain disagrees with its anchors '
        "(state_root at height 8: rewritten).</p>" in page
    )


def test_the_home_page_shows_gateways_and_device_counts(ward: Ward, explorer: RunningApp) -> None:
    with explorer.browser() as client:
        before = client.get("/").text
    with HttpChain(ward.node.url) as chain:
        admin(chain).register_gateway(AccountKeys.generate().address, "ward 3")
        wear_device(ward, chain)
    with explorer.browser() as client:
        after = client.get("/").text
    assert '<h2 id="fleet-title">Edge gateways and devices</h2>' in before
    assert "No devices registered." in before and "No gateway registered." in before
    summary = '<a href="/gateways">1 gateway</a>: 1 active, 0 revoked; '
    assert summary + '<span id="device-total">1</span> device.' in after
    heart_rate = '<th scope="row">heart rate</th><td>1</td><td>0</td><td>0</td><td>1</td>'
    assert f"<tr>{heart_rate}</tr>" in after
    assert "<td>ward 3</td>" in after and "No devices registered." not in after


def test_the_gateways_page_and_a_bad_start(ward: Ward, explorer: RunningApp) -> None:
    gateway = AccountKeys.generate()
    with HttpChain(ward.node.url) as chain:
        admin(chain).register_gateway(gateway.address, "ward 3")
    with explorer.browser() as client:
        page = client.get("/gateways")
        past = client.get("/gateways?start=50").text
        bad = client.get("/gateways?start=first")
    assert page.status_code == 200
    assert "<h1>Edge gateways (1)</h1>" in page.text
    assert f'<td class="addr">{format_address(gateway.address)}</td>' in page.text
    assert "<caption>Gateways 1 to 1 of 1, in registration order</caption>" in page.text
    assert "No gateway registered." in past and "Previous" in past
    assert bad.status_code == 400 and "whole number" in bad.text


def test_the_feed_redraws_the_fleet_when_a_device_is_registered(
    ward: Ward, explorer: RunningApp
) -> None:
    with explorer.browser() as client, client.stream("GET", "/events") as feed:
        lines = feed.iter_lines()
        assert next(lines).startswith("retry:")
        with HttpChain(ward.node.url) as chain:
            wear_device(ward, chain)
            committed = chain.latest_block().height
        deadline = time.monotonic() + FEED_DEADLINE_S
        fleet: dict[str, object] = {}
        while not fleet and time.monotonic() < deadline:
            line = next(lines)
            if line == "event: fleet":
                fleet = json.loads(next(lines)[6:])
    assert fleet["height"] == committed
    assert '<th scope="row">heart rate</th><td>1</td>' in str(fleet["html"])
