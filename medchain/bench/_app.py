"""The web app's page timings, in a real browser (Debian's Chromium, headless, driven by
Playwright as the browser tests drive it): the first load of a patient's app (the
printed link: token exchange, then the timeline), the timeline of a patient with
`records` records (its first page), and the vitals chart of `readings` readings over a
month: how long the app's warm-up takes to check the month's bundles after it starts
(the first load and the timeline are timed meanwhile), the chart's first view after
it, and the views after that; then the explorer's delay from a block's commit to its
row on the open page. Reading the month back with nothing remembered (every reading
checked, as a first view without the warm-up would) is timed outside the browser, on
the chain's thread before the app serves.

The patient's chain is in process, filled before anything is timed: `records` records
written through the SDK and `readings` readings of a simulated band sent through an
edge gateway's pipeline, on the thread that then serves the app's chain calls. The
explorer reads a one-validator devnet node over HTTP. Figures go to docs/BENCHMARKS.md
(measured on an idle machine); this is never a test."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from medchain.app import DeviceKind as ChainDeviceKind
from medchain.app import Role
from medchain.bench._report import Report, machine
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, load_keys
from medchain.gateway import (
    DeviceKind,
    GatewayConfig,
    GatewayService,
    ReadingIndex,
    SimulatedDevice,
    read_vitals,
)
from medchain.node import DevnetProcesses, LocalChain, local_devnet
from medchain.types import Allocation, ChainParams, Genesis, GenesisOrganisation, GenesisValidator
from medchain.web import Secrets, explorer_app, person_app, serving

Progress = Callable[[str, int, int], None]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CHAIN_ID = "medchain-bench"
FUNDS = 10**12
DAY_MS = 86_400_000
MONTH_DAYS = 30
REPEATS = 5
"""Each page is timed this many times after the first; the median is reported."""
WAIT_MS = 300_000
"""A page, or the warm-up, may take this long: checking every reading of 100,000 takes
seconds on an idle machine, more on a busy one."""


@dataclass(frozen=True)
class AppBenchResult:
    records: int
    readings: int
    first_load_ms: float
    timeline_ms: float
    cold_read_ms: float
    """The month read back with nothing remembered (every bundle opened, every reading
    checked), outside the browser."""
    warmup_ms: float
    """The app's warm-up: from its start to the month's bundles checked."""
    first_chart_ms: float
    """The chart's first view, after the warm-up."""
    chart_ms: float
    """Median of the views after it (the checked bundles remembered)."""
    chart_points: int
    """Points the chart drew (its buckets) for all the readings."""
    explorer_blocks: int
    explorer_delay_ms: float
    """Median over the blocks, from the block's time (its proposal, so a little before
    its commit) to its row appearing on the open explorer page."""
    explorer_delay_max_ms: float


def _genesis(validator: AccountKeys, patient: AccountKeys, hospital: AccountKeys) -> Genesis:
    """One hospital, whose admin is `hospital` (it registers the gateway)."""
    account = AccountKeys.generate()
    org = GenesisOrganisation(
        "bench-hospital", "Bench Hospital", "hospital", (hospital.public_key,),
        account.public_key, account.encryption_public_key,
    )  # fmt: skip
    return Genesis(
        CHAIN_ID,
        0,
        ChainParams(),
        (Allocation(validator.address, FUNDS), Allocation(patient.address, FUNDS)),
        (GenesisValidator(validator.public_key, "v0", 1, org.org_id),),
        organisations=(org,),
    )


def _observation(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
    }


def _send_readings(
    chain: LocalChain, patient: AccountKeys, hospital: AccountKeys, count: int, now_ms: int
) -> None:
    """`count` readings of one band over the last month, through a gateway's pipeline."""
    gateway = AccountKeys.generate()
    MedchainClient(patient, chain).transfer(gateway.address, FUNDS // 10)
    MedchainClient(hospital, chain).register_gateway(gateway.address, "bench ward")
    band = SimulatedDevice(DeviceKind.HEART_RATE_BAND, patient.address_text)
    owner = MedchainClient(patient, chain)
    owner.register_device(band.keys, patient.address, ChainDeviceKind.HEART_RATE, "band")
    band.interval_ms = max(1, MONTH_DAYS * DAY_MS // max(count, 1))
    band.now_ms = now_ms - MONTH_DAYS * DAY_MS + band.interval_ms
    config = GatewayConfig(rate_per_minute=10**9, rate_burst=max(20, count))
    service = GatewayService(gateway, chain, ReadingIndex(":memory:"), config)
    for _ in range(count):
        service.submit(band.next_reading())
    service.flush()


@contextmanager
def _patient_chain(
    patient: AccountKeys, records: int, readings: int, report: Progress, timed: dict[str, float]
) -> Iterator[LocalChain]:
    """The patient's chain, filled: opened (and closed) on the app's chain thread; the
    month read back with nothing remembered is timed into `timed["cold_read_ms"]`."""
    validator, hospital = AccountKeys.generate(), AccountKeys.generate()
    chain = LocalChain.in_memory(_genesis(validator, patient, hospital), validator)
    try:
        client = MedchainClient(patient, chain)
        client.register(Role.PATIENT, "Bench Patient")
        for i in range(records):
            client.put_record(patient.address, _observation(i))
            if i % 100 == 99 or i == records - 1:
                report("write records", i + 1, records)
        report("send readings", 0, readings)
        now_ms = int(time.time() * 1000)
        _send_readings(chain, patient, hospital, readings, now_ms)
        report("send readings", readings, readings)
        started = time.perf_counter()
        read_vitals(patient, chain, patient.address, now_ms - MONTH_DAYS * DAY_MS, now_ms)
        timed["cold_read_ms"] = (time.perf_counter() - started) * 1000
        yield chain
    finally:
        chain.close()


def _timed(page: Any, url: str) -> float:
    started = time.perf_counter()
    page.goto(url, wait_until="load", timeout=WAIT_MS)
    return (time.perf_counter() - started) * 1000


def _median(page: Any, url: str) -> float:
    return statistics.median(_timed(page, url) for _ in range(REPEATS))


@contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # a dev dependency: only here

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _time_patient(page: Any, link: str, warmup: Any) -> tuple[float, float, float, float, int]:
    """The first load and the timeline (while the warm-up runs), then the chart once the
    warm-up is done: its first view and the views after."""
    base = link.split("/?", 1)[0]
    first = _timed(page, link)
    if page.locator("ol.timeline li.card").count() == 0:
        raise RuntimeError("the timeline shows no records: the bench's app is broken")
    timeline = _median(page, base + "/")
    if not warmup.warmed.wait(WAIT_MS / 1000) or warmup.warm_s is None:
        raise RuntimeError("the app's vitals warm-up did not finish: the bench's app is broken")
    first_chart = _timed(page, base + "/vitals?range=month")
    chart = _median(page, base + "/vitals?range=month")
    points = len((page.locator("svg polyline.mean").get_attribute("points") or "").split())
    return first, timeline, first_chart, chart, points


def _time_explorer(page: Any, blocks: int, report: Progress) -> list[float]:
    """Each of `blocks` transfers' block: ms from its time to its row on the open page."""
    with tempfile.TemporaryDirectory(prefix="medchain-bench-app-") as home:
        devnet = local_devnet(Path(home), 1, "pbft", chain_id=CHAIN_ID, block_interval_ms=200)
        with DevnetProcesses(devnet) as nodes:
            nodes.start_nodes()
            nodes.wait_healthy()
            url = devnet.nodes[0].api_url
            faucet = load_keys(devnet.faucet_key)
            with serving(lambda p, s: explorer_app(lambda: HttpChain(url), p, s)) as link:
                page.goto(link, timeout=WAIT_MS)
                page.wait_for_selector("#blocks tbody[data-live=open]", timeout=WAIT_MS)
                delays = []
                with HttpChain(url) as chain:
                    sender = MedchainClient(faucet, chain)
                    for i in range(blocks):
                        sender.transfer(AccountKeys.generate().address, 1)
                        block = chain.latest_block()  # holds the transfer, or follows it
                        row = f'#blocks a[href="/blocks/{block.header.height}"]'
                        page.wait_for_selector(row, timeout=WAIT_MS)
                        delays.append(time.time() * 1000 - block.header.time_ms)
                        report("explorer blocks", i + 1, blocks)
                page.goto("about:blank")  # ends the live feed before the server stops
                return delays


def run_app_bench(
    records: int = 1_000,
    readings: int = 100_000,
    explorer_blocks: int = 10,
    progress: Progress | None = None,
) -> AppBenchResult:
    report = progress or (lambda stage, done, total: None)
    patient = AccountKeys.generate()
    timed: dict[str, float] = {}
    apps: list[Starlette] = []

    def open_chain() -> Any:
        return _patient_chain(patient, records, readings, report, timed)

    def make_app(port: int, keys: Secrets) -> Starlette:
        apps.append(person_app(patient, open_chain, port, keys))
        return apps[-1]

    with _browser() as page:
        with serving(make_app) as link:
            warmup = apps[0].state.vitals_warmup
            first, timeline, first_chart, chart, points = _time_patient(page, link, warmup)
        delays = _time_explorer(page, explorer_blocks, report)
    return AppBenchResult(
        records, readings, first, timeline, timed["cold_read_ms"], warmup.warm_s * 1000,
        first_chart, chart, points, len(delays), statistics.median(delays), max(delays),
    )  # fmt: skip


def app_report(result: AppBenchResult) -> Report:
    title = f"The web app's pages in headless Chromium — {machine()}"
    report = Report(title, ("page", "time", "target"))
    report.rows.extend(
        [
            ("first load (the printed link: token, then the timeline)",
             f"{result.first_load_ms:,.0f} ms", "≤ 1 s"),
            (f"timeline of {result.records:,} records (first page), median of {REPEATS}",
             f"{result.timeline_ms:,.0f} ms", "≤ 1 s"),
            (f"vitals of {result.readings:,} readings read back with nothing remembered "
             "(every reading checked; outside the browser)", f"{result.cold_read_ms:,.0f} ms",
             ""),
            ("the app's warm-up: from its start to the month's bundles checked (the first "
             "load and the timeline are timed meanwhile)", f"{result.warmup_ms:,.0f} ms", ""),
            (f"vitals chart of {result.readings:,} readings, first view (after the warm-up)",
             f"{result.first_chart_ms:,.0f} ms", "≤ 1 s"),
            (f"vitals chart of {result.readings:,} readings (a month, {result.chart_points} "
             f"points), views after the first, median of {REPEATS}",
             f"{result.chart_ms:,.0f} ms", "≤ 1 s"),
            (f"explorer: block time to its row on the open page, median of "
             f"{result.explorer_blocks}", f"{result.explorer_delay_ms:,.0f} ms", "≤ 2 s"),
            ("explorer: the same, slowest", f"{result.explorer_delay_max_ms:,.0f} ms", ""),
        ]
    )  # fmt: skip
    return report
