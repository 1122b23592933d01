"""The benchmarks' tables: every figure of a result lands in its row, beside its
target, whatever the figures are (results here are made up; the benchmarks' own tests
run them)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from medchain import bench


def made_up(cls: type[Any], **given: Any) -> Any:
    """An instance of the result dataclass `cls`: 1234 for a count, 56.75 for a
    measure, nested results made up the same way, unless `given`."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if isinstance(kind, types.UnionType):
            kind = typing.get_args(kind)[0]
        if field.name in given:
            values[field.name] = given[field.name]
        elif kind is int:
            values[field.name] = 1234
        elif kind is float:
            values[field.name] = 56.75
        elif kind is str:
            values[field.name] = field.name
        elif kind is bool:
            values[field.name] = True
        elif dataclasses.is_dataclass(kind):
            values[field.name] = made_up(typing.cast(type[Any], kind))
        else:
            values[field.name] = typing.get_origin(kind)()
    return cls(**values)


def made_up_node(**given: Any) -> Any:
    """A node's usage over the three phases of the network benchmark."""
    phases = [
        made_up(bench.NodePhase, phase=p) for p in ("transactions", "record upload", "record query")
    ]
    return made_up(bench.NodeUsage, **{"phases": phases, **given})


def cells(report: bench.Report) -> list[str]:
    return [cell for row in report.rows for cell in row]


def test_every_row_has_a_cell_per_column_and_titles_name_the_machine() -> None:
    latency = made_up(bench.LatencySummary)
    network = made_up(bench.NetworkBenchResult, anchoring=None, nodes=[made_up_node()])
    reports = [
        bench.ledger_report(made_up(bench.LedgerBenchResult)),
        bench.sim_report([made_up(bench.SimSpeed)], 4),
        bench.state_report([made_up(bench.StateRootTiming)], 400),
        bench.ring_report(
            [made_up(bench.RingTiming, ring_size=11), made_up(bench.RingTiming, ring_size=64)]
        ),
        bench.forged_report(made_up(bench.ForgedCost)),
        bench.flood_report(made_up(bench.FloodResult)),
        bench.search_report(
            made_up(bench.SearchBenchResult, queries=(made_up(bench.QueryTiming),))
        ),
        bench.gateway_report(made_up(bench.GatewayBenchResult, end_to_end=latency), 5),
        bench.network_report(network),
        bench.latency_report(network),
        bench.node_usage_report(network),
    ]
    for report in reports:
        assert report.rows
        assert all(len(row) == len(report.columns) for row in report.rows), report.title
    assert all(
        bench.machine() in r.title
        for r in reports
        if not r.title.startswith(("application", "per node"))
    )


def test_ledger_figures_beside_their_targets() -> None:
    result = made_up(bench.LedgerBenchResult, validate_apply_tx_per_s=12345.6)
    report = bench.ledger_report(result)
    assert report.columns == ("measure", "result", "target")
    assert report.rows[0][1:] == ("12,346 tx/s (56.8 µs/tx)", "≥ 8,000 tx/s")


def test_ring_target_is_for_rings_of_eleven() -> None:
    report = bench.ring_report(
        [made_up(bench.RingTiming, ring_size=11), made_up(bench.RingTiming, ring_size=64)]
    )
    assert [row[-1] for row in report.rows] == ["≤ 5 ms each", "reported"]


def test_network_summary_shows_anchoring_only_when_it_ran() -> None:
    plain = made_up(bench.NetworkBenchResult, anchoring=None)
    anchored = made_up(bench.NetworkBenchResult)
    assert "anchoring off" in bench.network_report(plain).title
    assert "anchoring on" in bench.network_report(anchored).title
    extra = len(bench.network_report(anchored).rows) - len(bench.network_report(plain).rows)
    assert extra == 3
    assert any(
        c.startswith("up to 1,234, 1,234 sent") for c in cells(bench.network_report(anchored))
    )


def test_latency_rows_carry_each_summary() -> None:
    upload = made_up(bench.LatencySummary, requests=987654, p95_ms=249.94)
    report = bench.latency_report(made_up(bench.NetworkBenchResult, upload=upload))
    assert report.rows[0][:2] == ("record upload (body stored + tx admitted)", "987,654")
    assert report.rows[0][-1] == "249.9"
    assert "upload p95 ≤ 250 ms" in report.notes[0]


def test_gateway_rows_show_losses_and_percentiles() -> None:
    e2e = made_up(bench.LatencySummary, p50_ms=10.0, p95_ms=20.0, p99_ms=30.0)
    result = made_up(bench.GatewayBenchResult, end_to_end=e2e, sent=10, accepted=9, lost=1)
    rows = {row[0]: row[1:] for row in bench.gateway_report(result, 5).rows}
    assert rows["readings sent, accepted, lost"] == ("10, 9, 1", "none lost")
    assert rows["device → committed batch"] == ("p50 10 ms, p95 20 ms, p99 30 ms", "—")


def test_forged_cost_note_gives_the_rate_a_client_gets() -> None:
    report = bench.forged_report(made_up(bench.ForgedCost, client_forged_per_s=2.25))
    assert "check 2.2 of them a second" in report.notes[0]
    assert "1234 forged" in report.title


def test_the_throughput_is_shown_as_a_share_of_the_validate_ceiling() -> None:
    ceiling = bench.ValidateCeiling(10_000, 2.5, 4_698.0, 2, 4, 2_349.0, 0.4798)
    report = bench.network_report(made_up(bench.NetworkBenchResult, ceiling=ceiling))
    rows = {row[0]: row[1:] for row in report.rows}
    assert rows["sustained throughput, share of the validate ceiling"] == (
        "48 % of 2,349 tx/s",
        "≥ 45 %",
    )
    assert report.notes == [
        "validate ceiling = cores x one-core validate+apply rate / validators = 2 x 4,698 / 4 "
        "= 2,349 tx/s (one-core rate measured before the devnet started: 10,000 transfers, "
        "2.5 s)"
    ]
    skipped = bench.network_report(made_up(bench.NetworkBenchResult, ceiling=None))
    assert len(skipped.rows) == len(report.rows) - 1 and not skipped.notes


def test_per_node_rows_give_each_phase_and_mark_the_top_proposer() -> None:
    top = made_up_node(node="node1", most_blocks=True)
    other = made_up_node(node="node2", most_blocks=False)
    report = bench.node_usage_report(made_up(bench.NetworkBenchResult, nodes=[top, other]))
    assert [row[:2] for row in report.rows] == [
        (name, phase)
        for name in ("node1 *", "node2")
        for phase in ("transactions", "record upload", "record query")
    ]
    # CPU 56.75 s, 5,675 % of a core (made up), peak, traffic each way, blocks proposed
    assert report.rows[0][2:] == (
        "56.8",
        "5675 %",
        "57",
        "56.8 / 56.8",
        "56.8 / 56.8",
        "1,234",
    )
