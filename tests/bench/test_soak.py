"""The soak: what a plan may ask, the gateway settings it widens, the acknowledged ids
read back, and a short real run (a devnet of node processes, a gateway and a fleet)
that samples every process, commits the readings and loses none. Its figures are for
docs/BENCHMARKS.md and never asserted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medchain.api import create_api
from medchain.app import TransferArgs
from medchain.bench import SoakPlan
from medchain.bench._node_usage import metric_value
from medchain.bench._soak import (
    DRIVER,
    MAX_HUB_RATE,
    STATE_CACHE_METRIC,
    _acked_ids,
    blocks_proposed,
)
from medchain.bench._soak_summary import SoakResult
from medchain.cli import app
from medchain.crypto import AccountKeys
from medchain.gateway import GatewayConfig
from medchain.types import MedchainError
from tests.api.harness import FakeNode, make_chain, signed
from tests.bench.test_network import _InProcessHttp


def test_the_fleet_sends_the_rate_asked_in_all() -> None:
    plan = SoakPlan(minutes=60, rate_per_s=100, patients=100, sample_s=60)
    assert plan.devices == 500
    assert plan.devices / plan.device_interval_s == pytest.approx(100)
    assert plan.rounds == 61  # at 0, 1, ... 60 minutes


def test_a_modest_load_keeps_the_gateway_defaults() -> None:
    plan = SoakPlan(minutes=60, rate_per_s=100, patients=100, sample_s=60)
    assert plan.gateway_config() == GatewayConfig()


def test_a_heavy_load_per_device_widens_the_rate_limit() -> None:
    plan = SoakPlan(minutes=60, rate_per_s=1_000, patients=10, sample_s=60)  # 20/s a device
    config = plan.gateway_config()
    assert config.rate_per_minute >= 2 * 60 * 20
    assert config.rate_burst >= 2 * 100 and config.max_readings_per_request >= 2 * 100


def test_a_rate_beyond_what_the_hubs_carry_is_refused() -> None:
    plan = SoakPlan(minutes=1, rate_per_s=MAX_HUB_RATE * 3 + 1, patients=3, sample_s=5)
    with pytest.raises(MedchainError, match="--patients 4 or more"):
        plan.check()


def test_a_sample_interval_that_leaves_no_slope_is_refused() -> None:
    plan = SoakPlan(minutes=1, rate_per_s=10, patients=2, sample_s=40)
    with pytest.raises(MedchainError, match="--sample-s 27 or less"):
        plan.check()
    SoakPlan(minutes=1, rate_per_s=10, patients=2, sample_s=27).check()


def test_the_command_refuses_a_plan_before_starting_anything() -> None:
    result = CliRunner().invoke(app, ["bench", "soak", "--minutes", "1", "--sample-s", "50"])
    assert result.exit_code == 1
    assert "error (" in result.output and "--sample-s" in result.output


def test_acknowledged_ids_are_read_back_in_order(tmp_path: Path) -> None:
    ids = [bytes([i % 256]) * 32 for i in range(10_000)]  # more than one read's worth
    path = tmp_path / "acknowledged.bin"
    path.write_bytes(b"".join(ids))
    assert list(_acked_ids(path)) == ids


def test_the_state_cache_size_is_read_from_a_nodes_metrics() -> None:
    text = (
        "# HELP medchain_height Latest committed height\n# TYPE medchain_height gauge\n"
        "medchain_height 12.0\n"
        f"# HELP {STATE_CACHE_METRIC} Cache\n# TYPE {STATE_CACHE_METRIC} gauge\n"
        f"{STATE_CACHE_METRIC} 1.234567e+06\n"
    )
    assert metric_value(text, STATE_CACHE_METRIC) == 1_234_567
    assert metric_value(text, "medchain_absent") is None


@pytest.mark.slow
def test_a_short_soak_samples_every_process_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    args = ["bench", "soak", "--minutes", "1", "--sample-s", "5", "--rate", "20"]
    result = CliRunner().invoke(app, [*args, "--patients", "10", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    processes = {"node0", "node1", "node2", "node3", "gateway", DRIVER}
    assert summary["samples"] == summary["samples_expected"] == 13
    assert {p["name"] for p in summary["processes"]} == processes
    for process in summary["processes"]:
        assert process["samples"] == 13 and process["rss_end_bytes"] > 0
        assert process["slope_mb_per_min"] is not None
    readings = summary["readings"]
    assert readings["sent"] > 0 and readings["acknowledged"] == readings["sent"]
    assert readings["committed"] == readings["acknowledged"]
    assert readings["lost"] == 0 and readings["drained"]
    assert summary["verdicts"]["no_reading_lost"]
    assert summary["height"] > 0
    cache = summary["state_cache"]
    assert cache["samples"] == 13 and cache["end_bytes"] > 0
    rounds = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rounds) == 13  # every round written as it was taken
    assert all(set(r["processes"]) == processes for r in rounds)
    assert [r["t_s"] for r in rounds] == sorted(r["t_s"] for r in rounds)
    assert rounds[-1]["committed"] > 0 and min(rounds[-1]["heights"].values()) > 0
    assert rounds[-1]["node0_state_cache_bytes"] == cache["end_bytes"]


def test_a_committee_is_for_dpos_and_at_most_the_validators() -> None:
    dpos = SoakPlan(1, 10, 2, 5, consensus="dpos", validators=10, committee=5)
    dpos.check()
    assert dpos.shape.committee == 5
    params = dpos.shape.params()
    assert params is not None and params.committee_size == 5
    assert SoakPlan(1, 10, 2, 5).shape.params() is None  # the devnet's defaults
    with pytest.raises(MedchainError, match="--consensus dpos"):
        SoakPlan(1, 10, 2, 5, consensus="pbft", validators=10, committee=5).check()
    with pytest.raises(MedchainError, match="--validators 5 or more"):
        SoakPlan(1, 10, 2, 5, consensus="dpos", validators=4, committee=5).check()


def test_the_command_passes_the_validators_and_the_committee(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[SoakPlan] = []

    def fake_run(plan: SoakPlan, **_: Any) -> SoakResult:
        asked.append(plan)
        raise MedchainError("stopped before any process started")

    monkeypatch.setattr("medchain.cli._bench.run_soak", fake_run)
    args = ["bench", "soak", "--minutes", "1", "--sample-s", "5", "--consensus", "dpos"]
    result = CliRunner().invoke(app, [*args, "--validators", "10", "--committee", "5"])
    assert result.exit_code == 1 and "stopped before" in result.output
    (plan,) = asked
    assert (plan.validators, plan.committee, plan.consensus) == (10, 5, "dpos")
    refused = CliRunner().invoke(app, [*args[:-2], "--committee", "5"])  # AFBFT
    assert refused.exit_code == 1 and "--consensus dpos" in refused.output
    assert len(asked) == 1


def test_blocks_proposed_counts_every_block_after_a_height_by_its_node() -> None:
    chain = make_chain()
    keys, payee = chain.validator, AccountKeys.generate().address
    for n in range(120):  # more blocks than one page of summaries
        chain.submit(
            signed(keys, n, "accounts.transfer", TransferArgs(payee, 1, ""), chain.chain_id)
        )

    async def count() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        http = _InProcessHttp(create_api(FakeNode(chain)))
        try:
            nodes = ["v0", "observer"]
            return (
                await blocks_proposed(http, "http://node", nodes, 5),
                await blocks_proposed(http, "http://node", nodes, chain.height + 1),
                await blocks_proposed(http, "http://node/absent", nodes, 1),
            )
        finally:
            await http.close()

    after_five, none, unanswered = asyncio.run(count())
    assert after_five == {"v0": chain.height - 4, "observer": 0}
    assert none == {"v0": 0, "observer": 0}
    assert unanswered == {}
