"""Paper 001's residential district on the devnet: 4 validators (AFBFT) and one
`medchain gateway --home` process; a hospital enrols 4,000 simulated devices, 4 per
patient (1,000 patients), and each device sends one reading in one minute (their start
times spread over the minute, about 67 readings/s). No reading is refused or lost: all
4,000 are accepted, committed, and proven against the batch roots on chain, and the
batches holding them count exactly 4,000 readings on chain. Timings are printed (`-s`),
not asserted: how fast the machine carried the minute is `medchain bench gateway`'s
figure, and a busy machine would fail a bound without anything being wrong. A hub whose
connection is cut sends its reading again (answered once, as a duplicate if it was
taken), so a reset connection costs no reading."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from medchain.app import new_batch_id
from medchain.client import HttpChain
from medchain.gateway import device_proof_auths, prove_readings, stream_fleet, wait_committed
from medchain.gateway._fleet import enrol_fleet
from tests.gateway.livegateway import PROVE, gateway_home, gateway_process, patient_key_file
from tests.node.netharness import PATIENCE_S, START_S, live_net, wait_for

DEVICES = 4_000
PER_PATIENT = 4
RATE = 1.0
"""Readings per device per minute."""


@pytest.mark.slow
def test_district(tmp_path: Path) -> None:
    started = time.monotonic()
    with live_net(tmp_path / "net", 4, "afbft") as net:
        net.start()
        chain = HttpChain(net.url(net.names[0]))
        hospital = net.founder_admin()  # a founding hospital's admin
        gw = gateway_home(tmp_path / "gw", chain, hospital, "district edge")
        up = time.monotonic()

        with gateway_process(gw.home):  # it starts while the fleet enrols
            devices = enrol_fleet(chain, hospital, DEVICES, 0, seed=1, per_patient=PER_PATIENT)
            enrolled = time.monotonic()
            assert len({d.patient for d in devices}) == DEVICES // PER_PATIENT
            wait_for(
                lambda: httpx.get(f"{gw.url}/v1/health").status_code == 200, START_S, "gateway"
            )

            run = asyncio.run(stream_fleet(gw.url, devices, rate_per_minute=RATE, readings=1))
            streamed = time.monotonic()
            wait_committed(gw.url, timeout_s=3 * PATIENCE_S)
            drained = time.monotonic()

            # No reading refused or lost: one accepted from every device.
            assert run.sent == DEVICES and not run.refused, (run.refused, run.unreachable)
            assert all(len(run.accepted.get(d.keys.address, [])) == 1 for d in devices)
            ids = [rid for d in devices for rid in run.accepted[d.keys.address]]
            assert len(set(ids)) == DEVICES

            # Every one committed and proven against its batch's root on chain.
            signers = device_proof_auths(run, devices, chain.chain_id)  # each its own
            assert signers.keys() == set(ids)
            tally = prove_readings(gw.url, chain, signers)
            proved = time.monotonic()
            assert tally.proven == tally.total == DEVICES, list(tally.failures.items())[:5]
            batches = [b for b in tally.batches.values() if b is not None]
            assert len(batches) == len(tally.batches)
            assert sum(b.count for b in batches) == DEVICES
            gateway = chain.gateway(gw.keys.address)  # and it committed no other batch
            assert gateway is not None and gateway.batch_count == len(batches)
            nonce = chain.account(gw.keys.address).nonce
            assert {new_batch_id(gw.keys.address, n) for n in range(nonce)} >= tally.batches.keys()

            patients = DEVICES // PER_PATIENT
            for i in (0, -1):  # the command a patient would run
                key = patient_key_file(devices[i], 1, patients, tmp_path)
                one = subprocess.run(
                    [*PROVE, ids[i].hex(), "--key", key, "--gateway", gw.url, "--node", chain.url],
                    capture_output=True,
                    text=True,
                    timeout=PATIENCE_S,
                )
                assert one.returncode == 0 and "verified" in one.stdout, one.stdout + one.stderr
        chain.close()
    sizes = sorted(b.count for b in batches)
    print(
        f"\ndistrict: {DEVICES} devices, {DEVICES // PER_PATIENT} patients, {RATE:g} "
        f"reading/device/min: devnet up {up - started:.1f} s; enrolled in "
        f"{enrolled - up:.1f} s; streamed in {streamed - enrolled:.1f} s "
        f"(the minute: {run.elapsed_s:.1f} s, {run.resent.total()} resent); drained in "
        f"{drained - streamed:.1f} s; "
        f"proven in {proved - drained:.1f} s; {len(batches)} batches of "
        f"{sizes[0]}-{sizes[-1]} readings (median {sizes[len(sizes) // 2]}); "
        f"total {time.monotonic() - started:.1f} s"
    )
