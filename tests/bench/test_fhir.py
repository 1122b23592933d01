"""The FHIR benchmark runs end to end on a few records (what it measures, not how fast)."""

from __future__ import annotations

from medchain.bench import fhir_report, run_fhir_bench


def test_a_small_run_searches_and_exports_every_record() -> None:
    stages: set[str] = set()
    result = run_fhir_bench(
        records=24, page=5, queries=4, codes=2, progress=lambda s, done, total: stages.add(s)
    )
    assert result.records == 24
    assert result.export_resources == 25  # every record and the patient's profile
    assert 0 < result.matches_p50 <= 24
    assert {"write records", "search"} <= stages
    report = fhir_report(result)
    assert len(report.rows) == 3
    assert "24 records" in report.title
