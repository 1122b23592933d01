"""The encrypted-search benchmark runs end to end at a small size: the searches it times
find exactly the records indexed under each keyword (its figures are never asserted)."""

from __future__ import annotations

from medchain.bench import run_search_bench


def test_search_bench_times_each_result_size_and_is_seeded() -> None:
    stages: list[tuple[str, int, int]] = []
    result = run_search_bench(300, 5, 50, 3, 2, seed=7, progress=lambda *s: stages.append(s))
    assert (result.records, result.keywords_per_record, result.epochs) == (300, 5, 3)
    assert result.entries == 300 * 5
    assert [q.size for q in result.queries] == ["small"] * 2 + ["medium"] * 2 + ["large"] * 2 + [
        "largest"
    ]
    assert all(q.epochs == 3 and q.queries == 2 and q.results > 0 for q in result.queries)
    largest = result.queries[-1]
    assert largest.results == max(q.results for q in result.queries)
    assert stages[-1] == ("search", 7, 7) and ("index records", 300, 300) in stages
    again = run_search_bench(300, 5, 50, 3, 2, seed=7)
    assert [(q.keyword, q.results) for q in again.queries] == [
        (q.keyword, q.results) for q in result.queries
    ]
