"""The app's vitals warm-up, over HTTP on a ward's node: when the app starts it checks
the patient's bundles of the last month, then those of each batch committed later, so
that the chart's first view checks nothing; the page still refuses nothing it should
not show and draws what a full check draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from starlette.applications import Starlette

from medchain.client import HttpChain
from medchain.gateway import _query as query_module
from medchain.web import Secrets, person_app
from medchain.web._vitals_warmup import VitalsWarmup
from tests.waiting import wait_until
from tests.web.conftest import RunningApp, Ward, node_chain, running
from tests.web.wearer import hours_ago, send_readings, wear_device


@contextmanager
def _patients_app(ward: Ward) -> Iterator[tuple[RunningApp, VitalsWarmup]]:
    apps: list[Starlette] = []

    def make(port: int, secrets: Secrets) -> Starlette:
        apps.append(person_app(ward.patient, node_chain(ward), port, secrets))
        return apps[-1]

    with running(make) as app:
        yield app, apps[0].state.vitals_warmup


def _never(*args: object) -> None:
    raise AssertionError("a bundle the warm-up checked was opened or checked again")


def test_the_warm_up_checks_the_month_and_new_batches_before_the_chart(
    ward: Ward, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain)
        send_readings(chain, band, 12, hours_ago(3))
        with _patients_app(ward) as (app, warmup):
            wait_until(warmup.warmed.is_set, what="the warm-up's first pass")
            assert warmup.checked.readings == 12 and warmup.warm_s is not None
            send_readings(chain, band, 8, hours_ago(1))  # a batch committed while it runs
            wait_until(lambda: warmup.checked.readings == 20, what="the new batch warmed")
            for name in ("verify_reading", "validate_vital", "open_bundle"):
                monkeypatch.setattr(query_module, name, _never)
            with app.browser() as client:
                page = client.get("/vitals", params={"range": "day"})
    assert page.status_code == 200
    assert "20 readings from" in page.text
    assert '<polyline class="mean" points="' in page.text
