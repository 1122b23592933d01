"""A devnet flooded with forged anonymous transactions for 20 s keeps committing honest
transactions and answering every /v1/status request: the forgeries are checked in the
verifier's workers, not on the node's event loop, and the attacking client is held to
its budget of verification work (429 before its requests are read). How fast the node
answers during a flood is a figure of `medchain bench flood` (docs/BENCHMARKS.md), not
a bound of this test: a machine loaded from outside would break such a bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from medchain.app import RING_MEMBER_COST
from medchain.bench._flood import (
    ATTACKER_ADDRESS,
    AttackTally,
    StatusProbe,
    attacker_tally,
    open_flood_scope,
    start_attacker,
)
from medchain.node import AdmissionConfig
from medchain.types import tx_id

from .netharness import live_net, wait_for

pytestmark = pytest.mark.slow

FLOOD_S = 20.0
WINDOWS = 4
BATCH = 16
RING = 64


def test_a_flood_of_forged_anonymous_transactions_starves_nothing(tmp_path: Path) -> None:
    with live_net(tmp_path, 2, block_interval_ms=250) as net:
        net.start()
        url = net.url("node0")
        scope = open_flood_scope(net.http, url, net.faucet, net.founder_account(), RING)
        net.nonces[net.faucet.public_key] = net.nonce("node0", net.faucet)
        probe = StatusProbe(url)
        probe.start()
        began_ms, began = time.time() * 1000, time.monotonic()
        attackers = [start_attacker(url, scope, FLOOD_S, BATCH, ATTACKER_ADDRESS) for _ in "ab"]
        honest: list[bytes] = []
        while time.monotonic() - began < FLOOD_S:
            tx = net.transfer(net.faucet, net.faucet.address, 1)
            response = net.http.post(f"{url}/v1/txs", json={"tx": tx.encoded.hex()})
            assert response.status_code == 202, response.text  # an honest client gets in
            honest.append(tx_id(tx))
            time.sleep(0.25)  # an honest client's pace during the flood (the behaviour)
        tally = AttackTally()
        for attacker in attackers:
            tally.add(attacker_tally(attacker, 120))
        elapsed_s = time.monotonic() - began
        probe.stop()

        figures = (
            f"/v1/status p50 {probe.percentile_ms(0.5):.1f} ms, p95 "
            f"{probe.percentile_ms(0.95):.1f} ms, max {probe.percentile_ms(1.0):.1f} ms over "
            f"{len(probe.latencies_s)} requests; attack {tally}"
        )
        print(figures)
        assert probe.failures == 0, figures

        # the honest transactions were committed while the flood went on, all through it
        wait_for(lambda: all(net.committed("node0", h) for h in honest), 60, "honest commits")
        ended_ms = began_ms + FLOOD_S * 1000
        window_ms = FLOOD_S * 1000 / WINDOWS
        windows = set()
        for tx_hash in honest:
            height = net.http.get(f"{url}/v1/txs/{tx_hash.hex()}").json()["height"]
            block_ms = net.block("node0", height)["time_ms"]
            if began_ms <= block_ms < ended_ms:
                windows.add(int((block_ms - began_ms) // window_ms))
        assert windows == set(range(WINDOWS)), f"honest commits in windows {windows}; {figures}"

        # the attackers got some forgeries checked, then were held to their budget
        budget = AdmissionConfig()
        cost = RING * RING_MEMBER_COST
        allowed = (budget.client_burst + budget.client_rate * elapsed_s) / cost + BATCH
        assert 0 < tally.forged_verified <= allowed, figures
        assert tally.statuses.get("429", 0) > 0, figures
        metric = net.metric("node0", "medchain_admission_clients_rate_limited_total")
        assert metric > 0
        net.assert_agreement(net.names, net.height("node1") - 1)
