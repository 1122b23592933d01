"""The soak: an edge gateway carrying a steady load into a devnet of node processes for a
long time, each process's memory and CPU sampled as it goes (issue 21: memory must not
grow once the run has settled, and no acknowledged reading may be lost).

The devnet, the gateway and the enrolled fleet are the gateway benchmark's
(`_gateway_net`). Each patient's bedside hub forwards its devices' readings once a
second as one request; readings are signed when due (an hour's readings signed in
advance would not fit the generator's memory), `rate_per_s` in all, spread evenly over
the devices. What the generator keeps does not grow with the run: counts, and the ids
of acknowledged readings appended to a file, read back only at the end.

Every `sample_s` seconds (from the load's start, on a fixed schedule) a round samples
every validator, the gateway (with its intake workers) and this process (the load
generator): resident memory and CPU seconds, with every node's height, the readings
sent and acknowledged so far and the gateway's count of readings committed. A round is
written as one JSON line to `out` as soon as it is taken, so a run cut short keeps its
data. When the load ends the gateway is given `DRAIN_S` to commit what it holds; then
each of its batches is looked up on node0, and an acknowledged reading outside every
batch the chain shows is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from medchain.bench._gateway_net import (
    GatewayNet,
    NetShape,
    batch_readings,
    committed_batches,
    drain_gateway,
    gateway_net,
    post_readings,
)
from medchain.bench._network import HttpError, _Http
from medchain.bench._node_usage import metric_value
from medchain.bench._resources import process_usage
from medchain.bench._soak_summary import (
    Point,
    Readings,
    SoakResult,
    settle_rule,
    settle_s,
    summarise_cache,
    summarise_roles,
    summarise_soak,
)
from medchain.gateway import (
    INDEX_FILE,
    GatewayConfig,
    ReadingIndex,
    SignedReading,
    SimulatedDevice,
    reading_to_json,
)
from medchain.node import ProcessFailed
from medchain.types import HASH_SIZE, MedchainError

Progress = Callable[[str, int, int], None]
OnSample = Callable[[dict[str, Any]], None]
PER_PATIENT = 5
"""Devices per patient: a band, an oximeter, a thermometer, a cuff, a fall detector."""
HUB_TICK_S = 1.0
MAX_HUB_RATE = 1_000
"""Readings a second one hub may forward (its request stays within the gateway's bounds)."""
DRIVER = "load generator"
STATE_CACHE_METRIC = "medchain_state_cache_bytes"
"""node0's state cache, sampled with the memory: it fills up to its bound."""


@dataclass(frozen=True)
class SoakPlan:
    minutes: float
    rate_per_s: int
    patients: int
    sample_s: float
    consensus: str = "afbft"
    validators: int = 4
    block_interval_ms: int = 500
    committee: int | None = None
    """DPoS: block producers elected each epoch (None: the chain's default); the other
    validators are ordinary nodes."""

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    @property
    def devices(self) -> int:
        return self.patients * PER_PATIENT

    @property
    def shape(self) -> NetShape:
        return NetShape(
            self.validators,
            self.consensus,
            self.block_interval_ms,
            self.patients,
            PER_PATIENT,
            self.committee,
        )

    @property
    def device_interval_s(self) -> float:
        """Each device reads this often, so the fleet sends `rate_per_s` in all."""
        return self.devices / self.rate_per_s

    @property
    def rounds(self) -> int:
        """Rounds of samples on the schedule: at 0, sample_s, ... up to the load's end."""
        return math.floor(self.duration_s / self.sample_s) + 1

    def check(self) -> None:
        """MedchainError for a plan the soak cannot carry out or judge."""
        self._check_committee()
        if self.rate_per_s > MAX_HUB_RATE * self.patients:
            least = math.ceil(self.rate_per_s / MAX_HUB_RATE)
            raise MedchainError(
                f"{self.rate_per_s:,} readings/s is more than {MAX_HUB_RATE:,} a second from "
                f"each of {self.patients:,} patients' hubs: give --patients {least:,} or more"
            )
        settle_at = settle_s(self.duration_s)
        after = math.floor(self.duration_s / self.sample_s) - math.ceil(settle_at / self.sample_s)
        if after + 1 < 2:
            most = math.floor((self.duration_s - settle_at) / 2)
            raise MedchainError(
                f"--sample-s {self.sample_s:g} leaves fewer than two samples of memory "
                f"{settle_rule(self.duration_s)}: give --sample-s {most} or less, or more "
                "--minutes"
            )

    def _check_committee(self) -> None:
        if self.committee is None:
            return
        if self.consensus != "dpos":
            raise MedchainError(
                "--committee sets the DPoS block producers: give --consensus dpos, or leave "
                "--committee out"
            )
        if self.committee > self.validators:
            raise MedchainError(
                f"a committee of {self.committee} needs as many validators: give --validators "
                f"{self.committee} or more, or a smaller --committee"
            )

    def gateway_config(self) -> GatewayConfig:
        """The gateway's defaults, widened only where this load needs it."""
        default = GatewayConfig()
        per_device_per_min = math.ceil(60 / self.device_interval_s)
        per_hub_request = math.ceil(PER_PATIENT * HUB_TICK_S / self.device_interval_s) + 1
        return replace(
            default,
            rate_per_minute=max(default.rate_per_minute, 2 * per_device_per_min),
            rate_burst=max(default.rate_burst, 2 * per_hub_request),
            max_readings_per_request=max(default.max_readings_per_request, 2 * per_hub_request),
        )


@dataclass
class _Tally:
    """What the load generator counted; acknowledged reading ids go to `acked`."""

    acked: IO[bytes]
    sent: int = 0
    acknowledged: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    resent: int = 0


class Soak:
    def __init__(self, plan: SoakPlan, out: IO[str] | None, progress: Progress) -> None:
        self.plan = plan
        self.out = out
        self.progress = progress
        self.on_sample: OnSample | None = None
        self.series: dict[str, list[Point]] = {}
        self.heights: dict[str, int] = {}
        self.state_cache: list[tuple[float, int]] = []
        """(seconds since the load began, bytes) of node0's state cache."""
        self.rounds = 0
        self.proposed: dict[str, int] = {}
        """Blocks each node proposed during the load."""

    async def run(self, home: Path) -> SoakResult:
        plan = self.plan
        async with gateway_net(home, plan.shape, plan.gateway_config(), self.progress) as net:
            readings = await self._soak(net, home / "acknowledged.bin")
        return self._result(readings)

    async def _soak(self, net: GatewayNet, acked_path: Path) -> Readings:
        with acked_path.open("wb") as acked:
            tally = _Tally(acked)
            first = await _height(net) + 1
            start = time.monotonic()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._sample_rounds(net, tally, start))
                group.create_task(self._tick(start))
                for k in range(self.plan.patients):
                    devices = net.devices[k * PER_PATIENT : (k + 1) * PER_PATIENT]
                    group.create_task(self._hub(net, devices, tally, start, k))
        self.proposed = await blocks_proposed(net.http, net.node_url, net.node_urls, first)
        self.progress("drain", 0, 1)
        drained = await drain_gateway(net.http, net.gateway_url)
        await asyncio.to_thread(net.gateway.stop_all)
        committed = await asyncio.to_thread(_committed_readings, net)
        acknowledged = set(_acked_ids(acked_path))  # a reading resent is acknowledged twice
        self.progress("drain", 1, 1)
        return Readings(
            sent=tally.sent,
            acknowledged=len(acknowledged),
            committed=len(acknowledged & committed),
            lost=len(acknowledged - committed),
            refused=dict(tally.refused.most_common()),
            resent=tally.resent,
            drained=drained,
        )

    # -- the load -----------------------------------------------------------------------

    async def _hub(
        self,
        net: GatewayNet,
        devices: list[SimulatedDevice],
        tally: _Tally,
        start: float,
        k: int,
    ) -> None:
        """One patient's hub: every tick, its devices' readings due by then, signed and
        sent as one request, until the load ends."""
        interval = self.plan.device_interval_s
        end = start + self.plan.duration_s
        now_ms = time.time_ns() // 1_000_000
        due: list[float] = []
        for j, device in enumerate(devices):
            phase = ((k * PER_PATIENT + j) / self.plan.devices) * interval
            device.interval_ms = round(interval * 1000)
            device.now_ms = now_ms + round(phase * 1000)
            due.append(start + phase)
        next_send = start + HUB_TICK_S * k / self.plan.patients
        while next_send < end:
            await asyncio.sleep(max(0.0, next_send - time.monotonic()))
            now = min(time.monotonic(), end)
            chunk: list[SignedReading] = []
            for j, device in enumerate(devices):
                while due[j] <= now:
                    chunk.append(device.next_reading())
                    due[j] += interval
            if chunk:
                await self._send(net, chunk, tally)
            next_send += HUB_TICK_S

    async def _send(self, net: GatewayNet, chunk: list[SignedReading], tally: _Tally) -> None:
        tally.sent += len(chunk)

        def resent(_: BaseException) -> None:
            tally.resent += 1

        try:
            bodies = (reading_to_json(r) for r in chunk)
            answers = await post_readings(net.http, net.gateway_url, bodies, resent)
        except (HttpError, KeyError, ValueError):
            tally.refused["request failed"] += len(chunk)
            return
        for signed, answer in zip(chunk, answers, strict=True):
            if answer["accepted"]:
                tally.acknowledged += 1
                tally.acked.write(signed.reading_id)
            else:
                tally.refused[str(answer["error"])] += 1

    async def _tick(self, start: float) -> None:
        total = round(self.plan.duration_s)
        while (elapsed := time.monotonic() - start) < self.plan.duration_s:
            self.progress("soak (s)", min(total, int(elapsed)), total)
            await asyncio.sleep(1.0)
        self.progress("soak (s)", total, total)

    # -- sampling -----------------------------------------------------------------------

    async def _sample_rounds(self, net: GatewayNet, tally: _Tally, start: float) -> None:
        for k in range(self.plan.rounds):
            await asyncio.sleep(max(0.0, start + k * self.plan.sample_s - time.monotonic()))
            _check_running(net)
            sample = await self._sample(net, tally, time.monotonic() - start)
            if self.out is not None:
                self.out.write(json.dumps(sample) + "\n")
                self.out.flush()
            if self.on_sample is not None:
                self.on_sample(sample)
            self.rounds += 1

    async def _sample(self, net: GatewayNet, tally: _Tally, t_s: float) -> dict[str, Any]:
        """One round: every process's usage, every node's height, the readings so far."""
        processes: dict[str, Any] = {}
        for name, pid, descendants in self._pids(net):
            usage = process_usage(pid, descendants=descendants)
            if usage is None:
                raise ProcessFailed(f"{name} (pid {pid}) is gone: it exited during the soak")
            processes[name] = {"pid": pid, **asdict(usage), "cpu_s": round(usage.cpu_s, 3)}
            self.series.setdefault(name, []).append(Point(t_s, usage.rss_bytes, usage.cpu_s))
        for node, url in net.node_urls.items():
            with contextlib.suppress(HttpError, KeyError, ValueError):  # else the last known
                self.heights[node] = int((await net.http.get(f"{url}/v1/status")).json()["height"])
        cache = await _state_cache_bytes(net)
        if cache is not None:
            self.state_cache.append((t_s, cache))
        return {
            "t_s": round(t_s, 3),
            "utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "heights": dict(self.heights),
            "node0_state_cache_bytes": cache,
            "sent": tally.sent,
            "acknowledged": tally.acknowledged,
            "committed": await asyncio.to_thread(_gateway_committed, net.gw_home),
            "processes": processes,
        }

    def _pids(self, net: GatewayNet) -> Iterator[tuple[str, int, bool]]:
        """(name, pid, with descendants) of every process sampled."""
        for name, child in net.nodes.children.items():
            yield name, child.pid, True
        yield "gateway", net.gateway_child.pid, True
        yield DRIVER, os.getpid(), False  # its descendants are the nodes and the gateway

    def _result(self, readings: Readings) -> SoakResult:
        plan = self.plan
        settle_at = settle_s(plan.duration_s)
        judged = set(self.series) - {DRIVER}
        processes = summarise_soak(self.series, judged, settle_at)
        return SoakResult(
            validators=plan.validators,
            consensus=plan.consensus,
            patients=plan.patients,
            devices=plan.devices,
            rate_per_s=plan.rate_per_s,
            duration_s=plan.duration_s,
            sample_s=plan.sample_s,
            settle_s=settle_at,
            settle_rule=settle_rule(plan.duration_s),
            samples=self.rounds,
            samples_expected=plan.rounds,
            height=self.heights.get("node0", 0),
            processes=processes,
            readings=readings,
            state_cache=summarise_cache(self.state_cache, settle_at) if self.state_cache else None,
            committee=plan.committee,
            proposed=self.proposed,
            roles=summarise_roles(processes, self.proposed),
        )


def _check_running(net: GatewayNet) -> None:
    """ProcessFailed, quoting its last words, if a node or the gateway has exited."""
    for supervisor in (net.nodes, net.gateway):
        for name in supervisor.crashed():
            child = supervisor.children[name]
            raise ProcessFailed(
                f"{name} exited with status {child.returncode} during the soak: "
                f"{child.program.last_line()}",
                child.program.tail(),
            )


async def _height(net: GatewayNet) -> int:
    return int((await net.http.get(f"{net.node_url}/v1/status")).json()["height"])


async def blocks_proposed(
    http: _Http, node_url: str, nodes: Iterable[str], first: int
) -> dict[str, int]:
    """Blocks from height `first` to the node's tip, by the node that proposed them
    (each of `nodes`, 0 for those that proposed none); empty if the node did not
    answer. Read as block summaries, a page at a time."""
    try:
        listed = (await http.get(f"{node_url}/v1/validators")).json()["validators"]
        name_of = {v["address"]: v["name"] for v in listed}
        counts = dict.fromkeys(nodes, 0)
        height = first
        while True:
            page = (await http.get(f"{node_url}/v1/blocks?from_height={height}")).json()
            for block in page["blocks"]:
                counts[name_of[block["proposer"]]] += 1
            if not page["blocks"] or page["blocks"][-1]["height"] >= page["latest"]:
                return counts
            height = page["blocks"][-1]["height"] + 1
    except (HttpError, KeyError, ValueError):
        return {}


async def _state_cache_bytes(net: GatewayNet) -> int | None:
    """node0's state cache size from its /metrics; None if it did not answer."""
    try:
        text = (await net.http.get(f"{net.node_url}/metrics")).text
    except HttpError:
        return None
    return metric_value(text, STATE_CACHE_METRIC)


def _gateway_committed(gw_home: Path) -> int:
    """Readings the gateway has recorded as committed on chain."""
    index = ReadingIndex(gw_home / INDEX_FILE)
    try:
        return index.committed_count()
    finally:
        index.close()


def _committed_readings(net: GatewayNet) -> set[bytes]:
    """The ids of the readings in the gateway's batches that node0 shows on chain."""
    by_batch = batch_readings(net.gw_home)
    on_chain = committed_batches(net.node_url, list(by_batch))
    return {rid for batch in on_chain for rid in by_batch[batch]}


def _acked_ids(path: Path) -> Iterator[bytes]:
    with path.open("rb") as ids:
        while chunk := ids.read(HASH_SIZE * 4096):
            for i in range(0, len(chunk), HASH_SIZE):
                yield chunk[i : i + HASH_SIZE]


def run_soak(
    plan: SoakPlan,
    *,
    out: IO[str] | None = None,
    progress: Progress | None = None,
    on_sample: OnSample | None = None,
) -> SoakResult:
    """Run the soak in a temporary directory; every round of samples also goes to `out`
    (JSON lines) and `on_sample` as it is taken."""
    soak = Soak(plan, out, progress or (lambda _s, _d, _t: None))
    soak.on_sample = on_sample
    with tempfile.TemporaryDirectory(prefix="medchain-soak-") as tmp:
        return asyncio.run(soak.run(Path(tmp)))


__all__ = ["DRIVER", "PER_PATIENT", "Soak", "SoakPlan", "run_soak"]
