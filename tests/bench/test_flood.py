"""The flood benchmark's parts: a scope opened over the API, forgeries that get through
every cheap check and fail the ring check, and the in-process cost measure, run at small
sizes (its figures are for docs/BENCHMARKS.md, never asserted). The devnet flood itself
is tests/node/test_flood.py."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from medchain.app import InvalidSignature, SignatureCheck, TransferArgs
from medchain.bench import run_forged_cost
from medchain.bench._flood import _honest_latencies_ms, forged_anonymous_tx, open_flood_scope
from medchain.cli import app
from medchain.crypto import RingSignature
from medchain.types import decode, tx_id
from tests.api.harness import RESEARCH, FakeNode, make_chain, served, signed


def test_forgeries_get_through_every_cheap_check_and_fail_the_ring_check() -> None:
    with served(lambda: FakeNode(make_chain())) as api, httpx.Client(timeout=30) as http:
        faucet = api.node.local.validator
        scope = open_flood_scope(http, api.url, faucet, RESEARCH.account, ring_size=5)
        assert len(scope.ring) == 5 and list(scope.ring) == sorted(scope.ring)
        forgeries = [forged_anonymous_tx(scope) for _ in range(2)]
        images = {decode(RingSignature, tx.signature).key_image for tx in forgeries}
        assert len(images) == 2  # each one new: no replay shortcut for the node

        def checks(node: FakeNode) -> list[SignatureCheck]:
            return [node.local.ledger.check_unsigned(tx) for tx in forgeries]

        found = api.call(checks)  # form, scope, ring and key image all pass
        assert all(c.anonymous and len(c.ring) == 5 and not c.run() for c in found)
        with pytest.raises(InvalidSignature):
            api.call(lambda node: node.local.ledger.check_tx(forgeries[0]))


def test_the_forged_cost_measure_runs_both_ways() -> None:
    cost = run_forged_cost(ring_size=4, forged=3)
    assert (cost.ring_size, cost.forged, cost.workers) == (4, 3, 1)
    assert min(cost.before_loop_ms, cost.after_total_ms) > 0
    result = CliRunner().invoke(app, ["bench", "ring", "--sizes", "4", "--runs", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.output), list)  # as before, unless --forged
    result = CliRunner().invoke(
        app, ["bench", "ring", "--sizes", "4", "--runs", "2", "--forged", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["forged"]["forged"] == 2


def test_honest_latencies_run_to_the_time_of_the_block_holding_each() -> None:
    with served(lambda: FakeNode(make_chain())) as api, httpx.Client(timeout=30) as http:
        faucet = api.node.local.validator
        chain_id = api.node.local.genesis.chain_id
        txs = [
            signed(faucet, n, "accounts.transfer", TransferArgs(faucet.address, 1, ""), chain_id)
            for n in range(2)
        ]
        for tx in txs:
            assert http.post(f"{api.url}/v1/txs", json={"tx": tx.encoded.hex()}).is_success
        times = []
        for tx in txs:  # from the full block, which the benchmark no longer reads
            height = http.get(f"{api.url}/v1/txs/{tx_id(tx).hex()}").json()["height"]
            times.append(http.get(f"{api.url}/v1/blocks/{height}").json()["time_ms"])
        sent = {tx_id(tx): times[k] - 100 * (k + 1) for k, tx in enumerate(txs)}
        assert _honest_latencies_ms(http, api.url, sent) == [100.0, 200.0]
