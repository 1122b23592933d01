"""`medchain bench`, the network benchmark: a short real run on a devnet of node
processes whose JSON carries every node's usage per phase and the validate ceiling
(figures are for docs/BENCHMARKS.md and never asserted), and --no-ceiling."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from medchain import bench
from medchain.api import create_api
from medchain.app import TransferArgs
from medchain.bench._network import _Http, _Response, _Watcher
from medchain.cli import app
from medchain.crypto import AccountKeys
from medchain.types import tx_id
from tests.api.harness import FakeNode, make_chain, signed
from tests.bench.test_report import made_up
from tests.waiting import until

PHASES = ["transactions", "record upload", "record query"]
PHASE_KEYS = {
    "phase",
    "wall_s",
    "cpu_s",
    "cpu_share",
    "peak_rss_mb",
    "p2p_sent_mb",
    "p2p_received_mb",
    "api_sent_mb",
    "api_received_mb",
    "blocks_proposed",
}


def test_a_sigterm_unwinds_a_benchmark_so_its_node_processes_are_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`timeout`, `kill` or a CI runner stop a benchmark with SIGTERM: it must unwind
    like Ctrl-C (the devnet's `with` block stops its nodes), not leave them running."""
    unwound: list[bool] = []

    def fake_run(**_options: Any) -> bench.NetworkBenchResult:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            unwound.append(True)
        raise AssertionError("the SIGTERM did not unwind the benchmark")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr("medchain.cli._bench.run_network_bench", fake_run)
    result = CliRunner().invoke(app, ["bench", "--duration", "1", "--json"])
    assert unwound == [True]
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert signal.getsignal(signal.SIGTERM) is before  # handed back once it is over


def test_no_ceiling_skips_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    def fake_run(**options: Any) -> bench.NetworkBenchResult:
        asked.update(options)
        result: bench.NetworkBenchResult = made_up(
            bench.NetworkBenchResult, ceiling=None, anchoring=None
        )
        return result

    monkeypatch.setattr("medchain.cli._bench.run_network_bench", fake_run)
    result = CliRunner().invoke(app, ["bench", "--duration", "1", "--no-ceiling", "--json"])
    assert result.exit_code == 0, result.output
    assert asked["ceiling"] is False
    doc = json.loads(result.output)
    assert doc["ceiling"] is None and doc["nodes"] == []
    result = CliRunner().invoke(app, ["bench", "--duration", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert asked["ceiling"] is True


@pytest.mark.slow
def test_a_short_run_reports_every_node_per_phase_and_the_ceiling() -> None:
    args = ["bench", "--duration", "2", "--clients", "2", "--rate", "4", "--window", "4"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    ceiling = doc["ceiling"]
    assert ceiling["validators"] == 4 and ceiling["one_core_tx_per_s"] > 0
    assert ceiling["ceiling_tx_per_s"] == pytest.approx(
        ceiling["cores"] * ceiling["one_core_tx_per_s"] / 4
    )
    assert ceiling["sustained_share"] == pytest.approx(
        doc["sustained_tx_per_s"] / ceiling["ceiling_tx_per_s"]
    )
    nodes = doc["nodes"]
    assert [n["node"] for n in nodes] == ["node0", "node1", "node2", "node3"]
    for node in nodes:
        assert node["address"].startswith("mc1") and node["pid"] > 0
        assert [p["phase"] for p in node["phases"]] == PHASES
        for phase in node["phases"]:
            assert set(phase) == PHASE_KEYS
            assert phase["wall_s"] > 0 and phase["cpu_s"] >= 0 and phase["peak_rss_mb"] > 0
        transactions = node["phases"][0]
        assert transactions["p2p_sent_mb"] > 0 and transactions["p2p_received_mb"] > 0
    assert nodes[0]["phases"][0]["api_sent_mb"] > 0  # the block watcher reads node0
    totals = [sum(p["blocks_proposed"] for p in n["phases"]) for n in nodes]
    assert sum(totals) > 0
    marked = [i for i, n in enumerate(nodes) if n["most_blocks"]]
    assert len(marked) <= 1
    assert all(totals[i] == max(totals) for i in marked)


class _InProcessHttp(_Http):
    """The benchmark's client, answered by a node's API in this process; keeps the
    URLs asked for."""

    def __init__(self, api: FastAPI) -> None:
        transport = httpx.ASGITransport(api)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://node")
        self.asked: list[str] = []

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, url: str, **kwargs: Any) -> _Response:
        self.asked.append(url)
        response = await self._client.request(method, url, **kwargs)
        return _Response(response.status_code, response.content)


def test_the_block_watcher_follows_a_backlog_by_summaries_only() -> None:
    """Over a backlog longer than one page of summaries, the watcher sees every
    committed transaction and every proposer without fetching a full block."""
    chain = make_chain()
    keys, payee = chain.validator, AccountKeys.generate().address
    txs = [
        signed(keys, n, "accounts.transfer", TransferArgs(payee, 1, ""), chain.chain_id)
        for n in range(130)
    ]
    for tx in txs:
        chain.submit(tx)
    assert chain.height > 100

    async def follow() -> tuple[_Watcher, list[str]]:
        http = _InProcessHttp(create_api(FakeNode(chain)))
        watcher = _Watcher(http, "http://node")
        watcher.start()
        await until(lambda: watcher.height == chain.height, what="the watcher at the tip")
        await watcher.stop()
        await http.close()
        return watcher, http.asked

    watcher, asked = asyncio.run(follow())
    assert set(watcher.committed) >= {tx_id(tx) for tx in txs}
    assert len(watcher.blocks) == chain.height
    assert {proposer for _, proposer in watcher.proposals} == {keys.address_text}
    assert asked and all(url.startswith("http://node/v1/blocks?from_height=") for url in asked)
