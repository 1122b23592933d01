"""The gateway benchmark: how many readings a second one edge gateway carries into the
chain, and how long a reading takes from its device to a committed batch.

A fresh devnet of node processes, one `medchain gateway --home` process committing to
node0, and a fleet enrolled on chain: `patients` patients with `per_patient` devices
each (a band, an oximeter, a thermometer, a cuff, a fall detector), every device reading
`rate` times a minute. Each patient's devices reach the gateway through a bedside hub
that forwards what its devices measured every `tick_ms` as one HTTP request (an array of
signed readings: the gateway checks each on its own). The load is open loop: readings
are signed in advance (so the figures measure the gateway, not the generator's
signing), each stamped with the time it is due, and sent when due.

Measured:

* **sustained** — the rate readings reach the chain in the steady state: readings in
  the batches committed after a warm-up and before the load ends, counted from one
  commit to the next (a batch counts when node0 first shows the block holding it), so
  neither the pipeline filling at the start nor draining at the end weighs on it;
* **committed while loaded** — every reading committed before the load ended, per second
  of load: lower than the sustained rate by about the end-to-end delay's share of the
  load, however fast the gateway;
* **end to end** — from the time a reading was due at its device to the block holding
  its batch (hub wait + gateway checks + batch window + commit); for the readings due in
  the load's last third too, which grows when a gateway falls behind;
* **acknowledgement** — hub request to the gateway's answer (the reading is stored).

The generator, the nodes and the gateway share this machine's CPUs."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from medchain.bench._gateway_net import (
    GatewayNet,
    NetShape,
    batch_readings,
    drain_gateway,
    gateway_net,
    log_tail,
    post_readings,
)
from medchain.bench._network import (
    HttpError,
    LatencySummary,
    _Http,
    _process_tree_cpu_s,
    _Watcher,
    summarise,
)
from medchain.client import HttpChain
from medchain.gateway import GatewayConfig, SimulatedDevice, reading_to_json

Progress = Callable[[str, int, int], None]
_HubLoad = list[tuple[float, bytes, bytes]]
"""One hub's readings in due order: (due offset in s, reading id, JSON form)."""


@dataclass(frozen=True)
class GatewayBenchResult:
    validators: int
    consensus: str
    patients: int
    devices: int
    rate_per_device_per_min: int
    tick_ms: int
    duration_s: float
    """The load's schedule: readings are due over this long."""
    load_s: float
    """From the first request to the last answer."""
    offered_per_s: float
    """Readings due per second of the schedule."""
    sent: int
    accepted: int
    refused: dict[str, int]
    lost: int
    """Accepted readings not committed by the end of the drain: must be 0."""
    resent: int
    """Hub requests sent again because their connection failed before the answer (the
    gateway answers readings it already took as duplicates)."""
    sustained_per_s: float
    """Steady-state rate into the chain (see the module's docstring)."""
    steady_window_s: float
    """Between the first and the last commit the sustained rate counts."""
    committed_while_loaded_per_s: float
    end_to_end: LatencySummary
    end_to_end_last_third: LatencySummary
    acknowledgement: LatencySummary
    batches: int
    mean_batch_readings: float
    gateway_cpu_share: float
    """The CPU time of the gateway's processes (its own and its intake workers) over the
    load, as a share of one core."""
    enrol_s: float


@dataclass
class _Load:
    due: dict[bytes, float] = field(default_factory=dict)
    """Reading id -> monotonic time it was due at its device."""
    accepted: set[bytes] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)
    ack_latencies: list[float] = field(default_factory=list)
    errors: int = 0
    resent: int = 0
    """Hub requests sent again after their connection failed."""


@dataclass
class _Run:
    """What one run measured, before the figures are worked out."""

    load: _Load
    load_started: float
    load_s: float
    gateway_cpu_s: float
    by_batch: dict[bytes, list[bytes]]
    committed: dict[bytes, float]
    """Reading id -> when node0 first showed the block holding its batch."""


class GatewayBench:
    def __init__(
        self,
        *,
        validators: int,
        consensus: str,
        patients: int,
        per_patient: int,
        rate: int,
        duration_s: float,
        tick_ms: int,
        block_interval_ms: int,
        progress: Progress,
    ) -> None:
        self.validators = validators
        self.consensus = consensus
        self.patients = patients
        self.per_patient = per_patient
        self.rate = rate
        self.duration_s = duration_s
        self.tick_ms = tick_ms
        self.block_interval_ms = block_interval_ms
        self.progress = progress

    async def run(self, home: Path) -> GatewayBenchResult:
        shape = NetShape(
            self.validators, self.consensus, self.block_interval_ms, self.patients, self.per_patient
        )
        async with gateway_net(home, shape, self._gateway_config(), self.progress) as net:
            run = await self._measure(net.http, net)
        return self._result(run, net.enrol_s)

    async def _measure(self, http: _Http, net: GatewayNet) -> _Run:
        """Drive the load, drain and stop the gateway; what reached the chain."""
        hubs = self._prepare(net.devices)
        watcher = _Watcher(http, net.node_url)
        watcher.start()
        cpu_before = _process_tree_cpu_s(net.gateway_child.pid)
        load = _Load()
        load_started = time.monotonic()
        await self._drive(http, net.gateway_url, hubs, load, load_started)
        load_s = time.monotonic() - load_started
        gateway_cpu = _process_tree_cpu_s(net.gateway_child.pid) - cpu_before
        if not await drain_gateway(http, net.gateway_url):
            raise RuntimeError(
                "the gateway still held pending readings after the drain; its log ends:\n"
                + log_tail(net.gw_home)
            )
        await asyncio.sleep(self.block_interval_ms / 1000 * 3)
        await watcher.stop()
        await asyncio.to_thread(net.gateway.stop_all)
        by_batch = batch_readings(net.gw_home)
        committed = self._committed(by_batch, net.node_url, watcher.committed)
        return _Run(load, load_started, load_s, gateway_cpu, by_batch, committed)

    def _result(self, run: _Run, enrol_s: float) -> GatewayBenchResult:
        load, load_s, committed = run.load, run.load_s, run.committed
        end = run.load_started + load_s
        accepted = {rid: seen for rid, seen in committed.items() if rid in load.accepted}
        in_window = sum(1 for seen in accepted.values() if seen <= end)
        scheduled_end = run.load_started + self.duration_s
        warm = run.load_started + _warm_up_s(self.duration_s)
        sustained, window = steady_rate(list(accepted.values()), warm, scheduled_end)
        e2e = [seen - load.due[rid] for rid, seen in accepted.items()]
        late_from = run.load_started + self.duration_s * 2 / 3
        late = [
            seen - load.due[rid] for rid, seen in accepted.items() if load.due[rid] >= late_from
        ]
        batches = [len(readings) for readings in run.by_batch.values()]
        return GatewayBenchResult(
            validators=self.validators,
            consensus=self.consensus,
            patients=self.patients,
            devices=self.patients * self.per_patient,
            rate_per_device_per_min=self.rate,
            tick_ms=self.tick_ms,
            duration_s=self.duration_s,
            load_s=load_s,
            offered_per_s=len(load.due) / self.duration_s,
            sent=len(load.due),
            accepted=len(load.accepted),
            refused=dict(load.refused.most_common()),
            lost=sum(1 for rid in load.accepted if rid not in committed),
            resent=load.resent,
            sustained_per_s=sustained,
            steady_window_s=window,
            committed_while_loaded_per_s=in_window / load_s if load_s else 0.0,
            end_to_end=summarise(e2e, 0, load_s),
            end_to_end_last_third=summarise(late, 0, load_s),
            acknowledgement=summarise(load.ack_latencies, load.errors, load_s),
            batches=len(batches),
            mean_batch_readings=sum(batches) / len(batches) if batches else 0.0,
            gateway_cpu_share=run.gateway_cpu_s / load_s if load_s else 0.0,
            enrol_s=enrol_s,
        )

    # -- set-up -------------------------------------------------------------------------

    def _gateway_config(self) -> GatewayConfig:
        """The gateway's settings for this load."""
        return replace(
            GatewayConfig(),
            # the devices of this benchmark are honest and fast: the rate limit must
            # not be what is measured
            rate_per_minute=self.rate * 2,
            rate_burst=max(20, self.rate // 6),  # a hub may hold 10 s of readings
            max_readings_per_request=max(500, self.per_patient * 20),
            batch_max_readings=20_000,
        )

    def _prepare(self, devices: Sequence[SimulatedDevice]) -> list[_HubLoad]:
        """Per hub (patient), its devices' readings in due order: (due offset in s,
        reading id, JSON form). Signed now, so sending costs the generator little."""
        per_device = max(1, int(self.duration_s * self.rate / 60))
        interval_s = 60 / self.rate
        now_ms = time.time_ns() // 1_000_000
        hubs: list[_HubLoad] = []
        total = len(devices) * per_device
        done = 0
        for p in range(self.patients):
            hub: _HubLoad = []
            for j in range(self.per_patient):
                device = devices[p * self.per_patient + j]
                phase = (p * self.per_patient + j) / len(devices) * interval_s
                device.interval_ms = round(interval_s * 1000)
                device.now_ms = now_ms + round(phase * 1000)
                for i in range(per_device):
                    signed = device.next_reading()
                    hub.append((phase + i * interval_s, signed.reading_id, reading_to_json(signed)))
                done += per_device
            hub.sort(key=lambda r: r[0])
            hubs.append(hub)
            self.progress("sign", done, total)
        return hubs

    # -- load ---------------------------------------------------------------------------

    async def _drive(
        self,
        http: _Http,
        url: str,
        hubs: list[_HubLoad],
        load: _Load,
        start: float,
    ) -> None:
        tick = self.tick_ms / 1000
        total = sum(len(h) for h in hubs)
        sent = 0

        def resent(_: BaseException) -> None:
            load.resent += 1

        async def hub(readings: _HubLoad, offset: float) -> None:
            nonlocal sent
            i = 0
            next_send = start + offset
            while i < len(readings):
                await asyncio.sleep(max(0.0, next_send - time.monotonic()))
                now = time.monotonic() - start
                j = i
                while j < len(readings) and readings[j][0] <= now:
                    j += 1
                if j > i:
                    chunk = readings[i:j]
                    for due, rid, _ in chunk:
                        load.due[rid] = start + due
                    asked = time.monotonic()
                    try:
                        answers = await post_readings(http, url, (r[2] for r in chunk), resent)
                    except (HttpError, KeyError, ValueError):
                        load.errors += 1
                        load.refused["request failed"] += len(chunk)
                    else:
                        load.ack_latencies.append(time.monotonic() - asked)
                        for (_, rid, _), answer in zip(chunk, answers, strict=True):
                            if answer["accepted"]:
                                load.accepted.add(rid)
                            else:
                                load.refused[str(answer["error"])] += 1
                    sent += j - i
                    i = j
                next_send += tick

        async def report() -> None:
            while sent < total:
                self.progress("load", sent, total)
                await asyncio.sleep(0.5)

        reporter = asyncio.create_task(report())
        tasks = [hub(h, tick * k / len(hubs)) for k, h in enumerate(hubs)]
        await asyncio.gather(*tasks)
        reporter.cancel()
        self.progress("load", total, total)

    # -- results ------------------------------------------------------------------------

    def _committed(
        self, by_batch: dict[bytes, list[bytes]], node_url: str, seen: dict[bytes, float]
    ) -> dict[bytes, float]:
        """Reading id -> when node0 first showed the block holding its batch."""
        result: dict[bytes, float] = {}
        with HttpChain(node_url) as chain:
            for batch_id, readings in by_batch.items():
                batch = chain.batch(batch_id)
                if batch is None or batch.tx_id not in seen:
                    continue
                for rid in readings:
                    result[rid] = seen[batch.tx_id]
        return result


def _warm_up_s(duration_s: float) -> float:
    """How long the pipeline is given to fill before the sustained rate is counted."""
    return max(5.0, duration_s / 6)


def steady_rate(commit_times: Sequence[float], start: float, end: float) -> tuple[float, float]:
    """(readings per second, seconds counted) between the first and the last commit in
    [start, end]: readings commit a batch at a time, so the rate runs from one commit
    to another (the first commit's readings were gathered before the window opened and
    are not counted). (0.0, 0.0) with fewer than two commits in the window."""
    per_commit = Counter(t for t in commit_times if start <= t <= end)
    times = sorted(per_commit)
    if len(times) < 2:
        return 0.0, 0.0
    window = times[-1] - times[0]
    return sum(per_commit[t] for t in times[1:]) / window, window


def run_gateway_bench(
    *,
    validators: int = 4,
    consensus: str = "afbft",
    patients: int = 200,
    per_patient: int = 5,
    rate: int = 300,
    duration_s: float = 30,
    tick_ms: int = 1_000,
    block_interval_ms: int = 500,
    progress: Progress | None = None,
) -> GatewayBenchResult:
    bench = GatewayBench(
        validators=validators,
        consensus=consensus,
        patients=patients,
        per_patient=per_patient,
        rate=rate,
        duration_s=duration_s,
        tick_ms=tick_ms,
        block_interval_ms=block_interval_ms,
        progress=progress or (lambda _s, _d, _t: None),
    )
    with tempfile.TemporaryDirectory(prefix="medchain-bench-gateway-") as tmp:
        return asyncio.run(bench.run(Path(tmp)))


__all__ = ["GatewayBenchResult", "run_gateway_bench", "steady_rate"]
