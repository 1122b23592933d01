"""FHIR facade benchmark: one patient's records on an in-process chain, served by the
facade's app in process (ASGI, no sockets). Times a search by patient and code for a
page, the facade's first sync (list, decrypt and index every record), and a bulk export
from kick-off to manifest. Figures go to docs/BENCHMARKS.md; this is never a test."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from medchain.app import Role
from medchain.bench._report import Report, machine
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys
from medchain.fhir import AccountSource, create_fhir_app, new_token, patient_fhir_id
from medchain.node import LocalChain
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator

Progress = Callable[[str, int, int], None]
CHAIN_ID = "medchain-bench"
T0 = 1_700_000_000_000
FUNDS = 10**12
DEFAULT_CODES = 20
"""Distinct codes, drawn uniformly: each names about a twentieth of the records."""
_POLL_S = 0.05


@dataclass(frozen=True)
class FhirBenchResult:
    records: int
    page: int
    queries: int
    matches_p50: int
    """Records matching a query (patient and one code), median over the queries."""
    write_ms_per_record: float
    """Validate, encrypt and commit one record through the SDK (one block each)."""
    first_sync_s: float
    """The facade's first search: list, decrypt and index every record."""
    search_p50_ms: float
    search_p95_ms: float
    export_resources: int
    export_s: float

    @property
    def export_per_s(self) -> float:
        return self.export_resources / self.export_s if self.export_s else 0.0


def _chain(patient: AccountKeys) -> LocalChain:
    validator = AccountKeys.generate()
    genesis = Genesis(
        CHAIN_ID,
        T0,
        ChainParams(),
        (Allocation(validator.address, FUNDS), Allocation(patient.address, FUNDS)),
        (GenesisValidator(validator.public_key, "v0"),),
    )
    return LocalChain.in_memory(genesis, validator)


def _observation(patient: str, code: str, when_ms: int, value: int) -> dict[str, Any]:
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when_ms // 1000))
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": moment,
        "valueQuantity": {"value": value, "unit": "1", "system": "http://unitsofmeasure.org"},
    }


def run_fhir_bench(
    records: int = 10_000,
    page: int = 50,
    queries: int = 200,
    codes: int = DEFAULT_CODES,
    seed: int = 0,
    progress: Progress | None = None,
) -> FhirBenchResult:
    """Write `records` Observations of one patient, each with one of `codes` LOINC-shaped
    codes, then time the facade over them."""
    report = progress or (lambda stage, done, total: None)
    rng = random.Random(seed)
    drawn = tuple(f"{8000 + i}-{i % 10}" for i in range(codes))
    keys = AccountKeys.generate()
    chain = _chain(keys)
    try:
        patient = MedchainClient(keys, chain)
        patient.register(Role.PATIENT, "bench patient")
        me = patient_fhir_id(keys.address)
        started = time.perf_counter()
        for i in range(records):
            resource = _observation(me, rng.choice(drawn), T0 + i * 3_600_000, i)
            patient.put_record(keys.address, resource)
            if i % 100 == 99 or i == records - 1:
                report("write records", i + 1, records)
        write_ms = (time.perf_counter() - started) * 1000 / max(records, 1)
        token = new_token()
        app = create_fhir_app(AccountSource(patient), token)
        timings = asyncio.run(_time_app(app, token, me, drawn, page, queries, rng, report))
    finally:
        chain.close()
    return FhirBenchResult(records=records, page=page, write_ms_per_record=write_ms, **timings)


async def _time_app(
    app: Any,
    token: str,
    patient: str,
    codes: tuple[str, ...],
    page: int,
    queries: int,
    rng: random.Random,
    report: Progress,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://fhir", headers=headers, timeout=None
    ) as http:
        started = time.perf_counter()
        await _search(http, patient, codes[0], page)  # the first sync
        first_sync_s = time.perf_counter() - started
        latencies, matches = [], []
        for i in range(queries):
            started = time.perf_counter()
            total = await _search(http, patient, rng.choice(codes), page)
            latencies.append((time.perf_counter() - started) * 1000)
            matches.append(total)
            report("search", i + 1, queries)
        exported, export_s = await _export(http)
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {
        "queries": queries,
        "matches_p50": int(statistics.median(matches)) if matches else 0,
        "first_sync_s": first_sync_s,
        "search_p50_ms": statistics.median(latencies) if latencies else 0.0,
        "search_p95_ms": cuts[18] if cuts else 0.0,
        "export_resources": exported,
        "export_s": export_s,
    }


async def _search(http: httpx.AsyncClient, patient: str, code: str, page: int) -> int:
    params = {"patient": patient, "code": f"http://loinc.org|{code}", "_count": str(page)}
    response = await http.get("/Observation", params=params)
    response.raise_for_status()
    return int(response.json()["total"])


async def _export(http: httpx.AsyncClient) -> tuple[int, float]:
    """Resources a patient export wrote, and the seconds from kick-off to manifest."""
    started = time.perf_counter()
    kick_off = await http.get(
        "/Patient/$export",
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
    )
    kick_off.raise_for_status()
    status_url = kick_off.headers["Content-Location"]
    while True:
        status = await http.get(status_url)
        status.raise_for_status()
        if status.status_code == 200:
            elapsed = time.perf_counter() - started
            return sum(int(o["count"]) for o in status.json()["output"]), elapsed
        await asyncio.sleep(_POLL_S)  # the poll interval, not a guess at a duration


def fhir_report(result: FhirBenchResult) -> Report:
    title = (
        f"FHIR facade over {result.records:,} records of one patient (in-process chain, "
        f"ASGI) — {machine()}"
    )
    search = f"search patient+code, page of {result.page}"
    report = Report(title, ("measure", "value", "target"))
    report.rows.extend(
        [
            (
                f"{search}: p50 (~{result.matches_p50:,} matches)",
                f"{result.search_p50_ms:.1f} ms",
                "",
            ),
            (
                f"{search}: p95 ({result.queries} queries)",
                f"{result.search_p95_ms:.1f} ms",
                "≤ 50 ms",
            ),
            (
                f"bulk export, Patient/$export ({result.export_resources:,} resources)",
                f"{result.export_per_s:,.0f} resources/s",
                "",
            ),
        ]
    )
    report.notes.extend(
        [
            f"first sync (list, decrypt and index every record): {result.first_sync_s:.1f} s",
            "writing a record through the SDK (one block each): "
            f"{result.write_ms_per_record:.1f} ms",
        ]
    )
    return report
