"""The gateway as it runs: a devnet of node processes (its genesis restricts a device for
8 blocks, not 100, and bans it at the 4th strike, not the 6th, so a bounded run sees the
whole rule), a private Mosquitto, and a `medchain gateway --home` process against node0
taking readings over HTTP and MQTT. 100 simulated honest devices, a quarter of them over
MQTT, and 2 misbehaving ones (one per transport). No honest reading is lost, every one is
provable against the chain, and the honest devices stay active; the misbehaving ones end
restricted, then banned, on chain. Readings with a bad signature, from an unregistered or
a banned device, or replayed, are refused with a clear error and never reach the chain:
the committed batches on chain count exactly the accepted readings."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from medchain.app import DeviceAction, DeviceState, new_batch_id
from medchain.cli import app
from medchain.client import HttpChain
from medchain.crypto import AccountKeys, save_keys
from medchain.gateway import (
    CachedBatches,
    DeviceKind,
    FleetRun,
    MisbehavingDevice,
    MqttConfig,
    MqttTarget,
    SignedReading,
    SimulatedDevice,
    check_reading_proof,
    proof_auth,
    reading_to_json,
    sign_reading,
    state_history,
    stream_fleet,
    wait_committed,
)
from medchain.gateway._config import load_config, write_config
from medchain.gateway._fleet import enrol_fleet
from medchain.node import DISCLOSURES_FILE, check_log_file
from medchain.types import ChainParams
from tests.gateway.livegateway import (
    DISCLOSURES,
    PROVE,
    gateway_home,
    gateway_process,
    patient_key_file,
)
from tests.gateway.test_mqtt import Broker, broker  # noqa: F401  (the fixture)
from tests.node.netharness import PATIENCE_S, START_S, live_net, wait_for

HONEST = 100
BAD = 2
READINGS = 6  # per device, one a second
SEED = 7
PARAMS = ChainParams(device_restrict_blocks=8, device_strikes_ban=4)
PREFIX = "medchain/devices"


class _Fleet:
    """Streams over both transports at once and keeps every answer."""

    def __init__(self, url: str, mqtt: MqttTarget) -> None:
        self.url = url
        self.mqtt = mqtt
        self.accepted: dict[bytes, list[bytes]] = {}
        self.refused: dict[str, int] = {}

    def stream(
        self,
        over_http: Sequence[SimulatedDevice],
        over_mqtt: Sequence[SimulatedDevice],
        readings: int,
        rate_per_minute: float = 60,
    ) -> None:
        async def both() -> tuple[FleetRun, FleetRun]:
            return await asyncio.gather(
                stream_fleet(
                    self.url, over_http, rate_per_minute=rate_per_minute, readings=readings
                ),
                stream_fleet(
                    self.url,
                    over_mqtt,
                    rate_per_minute=rate_per_minute,
                    readings=readings,
                    mqtt=self.mqtt,
                ),
            )

        for run in asyncio.run(both()):
            for device, ids in run.accepted.items():
                self.accepted.setdefault(device, []).extend(ids)
            for code, n in run.refused.items():
                self.refused[code] = self.refused.get(code, 0) + n


@dataclass(frozen=True)
class _Live:
    """The running gateway, its chain and fleet, as the test's phases share them."""

    chain: HttpChain
    node: str
    url: str
    hospital: AccountKeys
    gateway: AccountKeys
    fleet: _Fleet
    honest: list[SimulatedDevice]
    probe: SimulatedDevice
    bad: list[MisbehavingDevice]
    tmp: Path


@pytest.mark.slow
def test_gateway_live(tmp_path: Path, broker: Broker) -> None:  # noqa: F811
    started = time.monotonic()
    with live_net(tmp_path / "net", 4, "pbft", params=PARAMS) as net:
        net.start()
        node = net.url(net.names[0])
        chain = HttpChain(node)
        assert chain.params.device_restrict_blocks == PARAMS.device_restrict_blocks
        hospital_keys = net.founder_admin()  # a founding hospital's admin

        gw = gateway_home(tmp_path / "gw", chain, hospital_keys)
        home, url, gateway_keys = gw.home, gw.url, gw.keys
        mqtt = MqttConfig(port=broker.port, topic_prefix=PREFIX)
        write_config(home, replace(load_config(home), mqtt=mqtt), overwrite=True)

        with gateway_process(home) as proc:  # it starts while the fleet enrols
            devices = enrol_fleet(chain, hospital_keys, HONEST + 1 + BAD, BAD, seed=SEED)
            wait_for(
                lambda: httpx.get(f"{url}/v1/health").status_code == 200, START_S, "the gateway"
            )
            log = home / "gateway.log"
            wait_for(lambda: "mqtt: subscribed" in log.read_text(), START_S, "its MQTT intake")
            enrolled = time.monotonic()
            honest, probe = devices[:HONEST], devices[HONEST]
            bad = [d for d in devices if isinstance(d, MisbehavingDevice)]
            assert len(bad) == BAD and not isinstance(probe, MisbehavingDevice)
            # a device waits for its ack as long as a loaded machine may take to answer
            target = MqttTarget(
                port=broker.port, topic_prefix=PREFIX, connections=4, ack_timeout_s=PATIENCE_S
            )
            live = _Live(
                chain,
                node,
                url,
                hospital_keys,
                gateway_keys,
                _Fleet(url, target),
                honest,
                probe,
                bad,
                tmp_path,
            )
            _honest_readings_are_committed_and_provable(live)
            streamed = time.monotonic()
            print(
                f"enrolled {len(devices)} devices in {enrolled - started:.1f} s; streamed "
                f"in {streamed - enrolled:.1f} s; refused: {live.fleet.refused}"
            )
            _misbehaving_devices_are_banned(live)
            penalised = time.monotonic()
            print(f"misbehaving devices banned in {penalised - streamed:.1f} s")
            cli_accepted = _devices_simulate_over_mqtt(live, tmp_path, broker.port)
            print(f"devices simulate over MQTT: {time.monotonic() - penalised:.1f} s")
            refused = _refused_readings_are_never_stored(live)
            _only_accepted_readings_reach_the_chain(live, refused, cli_accepted)
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(60) == 0
        chain.close()
    print(f"live gateway test: {time.monotonic() - started:.1f} s")


def _honest_readings_are_committed_and_provable(live: _Live) -> None:
    """No honest reading refused or lost, over either transport: each is committed and
    provable."""
    honest, fleet = live.honest, live.fleet
    mqtt_share = set(range(0, HONEST, 4))  # a quarter of the honest fleet
    over_http = [*(d for i, d in enumerate(honest) if i not in mqtt_share), live.bad[0]]
    over_mqtt = [*(honest[i] for i in sorted(mqtt_share)), live.bad[1]]
    fleet.stream(over_http, over_mqtt, READINGS)
    wait_committed(live.url, timeout_s=PATIENCE_S)
    assert all(len(fleet.accepted.get(d.keys.address, [])) == READINGS for d in honest)
    chain_id = live.chain.chain_id
    with httpx.Client(base_url=live.url, timeout=10.0) as http:
        ids = [rid for d in honest for rid in fleet.accepted[d.keys.address]]
        batches = CachedBatches(live.chain)
        for d in honest:  # each device asks about its own readings
            for rid in fleet.accepted[d.keys.address]:
                check = check_reading_proof(http, batches, rid, proof_auth(d.keys, chain_id))
                assert check.verified, (rid.hex(), check.reason)
    assert len(ids) == HONEST * READINGS
    middle = honest[len(honest) // 2]
    key = patient_key_file(middle, SEED, HONEST + 1 + BAD, live.tmp)
    asked = fleet.accepted[middle.keys.address][0].hex()
    proved = subprocess.run(  # the command a patient would run
        [*PROVE, asked, "--key", key, "--gateway", live.url, "--node", live.node],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert proved.returncode == 0 and "verified" in proved.stdout, proved.stderr
    # each proof the gateway served is in its own disclosure log, in its home
    log = live.tmp / "gw" / DISCLOSURES_FILE
    wait_for(lambda: check_log_file(log, [])[0] == len(ids) + 1, PATIENCE_S, "the gateway's log")
    _the_gateways_log_is_committed_and_shown_to_the_patient(live, log, len(ids) + 1, key)


def _the_gateways_log_is_committed_and_shown_to_the_patient(
    live: _Live, log: Path, entries: int, patient_key: str
) -> None:
    """The gateway commits its log's head with its URL; the patient's audit asks it."""

    def committed() -> bool:
        head = live.chain.disclosure_head(live.gateway.address)
        return head is not None and head.seq == entries

    wait_for(committed, PATIENCE_S, "the gateway's committed disclosure head")
    head = live.chain.disclosure_head(live.gateway.address)
    assert head is not None and head.api_url == live.url
    assert check_log_file(log, [(head.seq, head.head)]) == (entries, 0)
    audit = subprocess.run(
        [*DISCLOSURES, "--key", patient_key, "--node", live.node],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert audit.returncode == 0, audit.stderr
    assert "gateway ward 3" in audit.stdout and "log verified" in audit.stdout, audit.stdout


def _misbehaving_devices_are_banned(live: _Live) -> None:
    """The bad devices keep at it: restricted at the 3rd strike (at most one per offence
    and batch window), refused while restricted, struck again once the 8 blocks lapse,
    banned by a strike while restricted or the 4th (bounded)."""
    chain, bad = live.chain, live.bad
    deadline = time.monotonic() + 3 * PATIENCE_S
    while time.monotonic() < deadline and not all(_banned(chain, d) for d in bad):
        live.fleet.stream([bad[0]], [bad[1]], readings=2, rate_per_minute=120)
    wait_committed(live.url, timeout_s=PATIENCE_S)
    height = chain.height
    for d in bad:
        audit = chain.device_audit(d.keys.address)
        history = state_history(audit, height)
        print(f"{d.mode.value} device: {' -> '.join(history)}")
        strikes = [e for e in audit if e.action is DeviceAction.STRIKE]
        restricted = [i for i, e in enumerate(strikes) if e.state is DeviceState.RESTRICTED]
        assert restricted, (d.mode, history)
        assert any(e.state is DeviceState.BANNED for e in strikes[restricted[0] + 1 :])
        found = chain.device(d.keys.address)
        assert found is not None and found.state_at(height) is DeviceState.BANNED
    for h in live.honest:
        device = chain.device(h.keys.address)
        assert device is not None and device.state_at(height) is DeviceState.ACTIVE
        assert device.strikes == 0
    assert live.fleet.refused.get("device_restricted", 0) > 0  # refused, not struck


def _devices_simulate_over_mqtt(live: _Live, tmp_path: Path, broker_port: int) -> int:
    """The command itself, over MQTT: a small fleet of its own (another seed). The
    number of its readings the gateway accepted."""
    key_file = tmp_path / "hospital.key"
    save_keys(key_file, live.hospital)
    simulate = [
        *("devices", "simulate", "--key", str(key_file), "--seed", "99"),
        *("--count", "2", "--misbehave", "1", "--readings", "3", "--rate", "120"),
        *("--transport", "mqtt", "--broker", f"127.0.0.1:{broker_port}"),
        *("--gateway", live.url, "--node", live.node),
    ]
    simulated = CliRunner().invoke(app, simulate, env={"COLUMNS": "220"})
    assert simulated.exit_code == 0, simulated.output
    print(simulated.output)
    report = " ".join(simulated.output.split())
    assert "6 readings sent over MQTT" in report and "honest devices: 1 active" in report
    assert "misbehaving devices" in report and "non-conforming" in report
    return int(re.search(r"(\d+) accepted", report).group(1))  # type: ignore[union-attr]


def _refused_readings_are_never_stored(live: _Live) -> list[bytes]:
    """Refused with a clear message, against the running gateway, and never stored:
    the ids of the readings refused."""
    refused: list[bytes] = []
    probe, fleet, bad = live.probe, live.fleet, live.bad
    with httpx.Client(base_url=live.url, timeout=10.0) as http:

        def refuse(signed: SignedReading, status: int, code: str, says: str) -> None:
            answer = http.post("/v1/readings", content=reading_to_json(signed))
            body = answer.json()
            assert (answer.status_code, body["error"]) == (status, code), body
            assert says in body["message"], body
            refused.append(signed.reading_id)

        good = probe.next_reading()
        forged = bytes([good.signature[0] ^ 1]) + good.signature[1:]
        refuse(SignedReading(good.reading, forged), 401, "bad_signature", "signature")
        stranger = SimulatedDevice(
            DeviceKind.THERMOMETER, probe.patient, keys=AccountKeys.generate()
        )
        refuse(stranger.next_reading(), 404, "unknown_device", "not registered")
        banned = SimulatedDevice.next_reading(bad[0])  # even an honest-looking one
        refuse(banned, 403, "device_banned", "banned")
        first = probe.next_reading()
        answer = http.post("/v1/readings", content=reading_to_json(first))
        assert answer.status_code == 202, answer.text
        fleet.accepted[probe.keys.address] = [first.reading_id]
        replayed = sign_reading(
            probe.keys,
            first.reading.sequence,
            first.reading.timestamp_ms + 1,
            first.reading.observation,
        )
        refuse(replayed, 409, "replayed", "replayed or reordered")
        # and over MQTT, the banned flooding device's readings come back refused
        before = fleet.refused.get("device_banned", 0)
        fleet.stream([], [bad[1]], readings=1)
        assert fleet.refused["device_banned"] > before
        wait_committed(live.url, timeout_s=PATIENCE_S)
        as_probe = proof_auth(probe.keys, live.chain.chain_id)
        for rid in refused:
            unknown = http.get(f"/v1/readings/{rid.hex()}", auth=as_probe)
            assert unknown.status_code == 404, unknown.text
            assert unknown.json()["error"] == "unknown_reading"
    return refused


def _only_accepted_readings_reach_the_chain(
    live: _Live, refused: list[bytes], cli_accepted: int
) -> None:
    """Every committed batch on chain (batch ids follow the gateway's nonces) counts only
    accepted readings: the refused ones never reached the chain."""
    chain, address = live.chain, live.gateway.address
    gateway = chain.gateway(address)
    assert gateway is not None
    nonce = chain.account(address).nonce
    batch_ids = [new_batch_id(address, n) for n in range(nonce)]
    committed = [b for b in map(chain.batch, batch_ids) if b is not None]
    accepted = {rid for rids in live.fleet.accepted.values() for rid in rids}
    assert len(committed) == gateway.batch_count
    assert sum(b.count for b in committed) == len(accepted) + cli_accepted
    assert not accepted & set(refused)


def _banned(chain: HttpChain, device: MisbehavingDevice) -> bool:
    found = chain.device(device.keys.address)
    return found is not None and found.state_at(chain.height) is DeviceState.BANNED
