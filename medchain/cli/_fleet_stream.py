"""Streaming a simulated fleet's readings to a gateway, at a rate per device, and
collecting what the gateway answered."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from rich.progress import Progress

from medchain.cli._common import GatewayUnavailable
from medchain.gateway import MisbehavingDevice, Misbehaviour, SimulatedDevice, reading_to_json
from medchain.types import MedchainError

FLOOD_BURST = 40
"""Readings a flooding device sends per tick: twice the default burst."""


@dataclass
class FleetRun:
    """What a simulation sent and what the gateway answered."""

    accepted: dict[bytes, list[bytes]] = field(default_factory=dict)
    """Device address -> ids of its readings the gateway accepted (resends included)."""
    refused: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    elapsed_s: float = 0.0


async def stream_fleet(
    gateway: str,
    devices: Sequence[SimulatedDevice],
    *,
    rate_per_minute: float,
    duration_s: float | None = None,
    readings: int | None = None,
    concurrency: int = 64,
    progress: Progress | None = None,
) -> FleetRun:
    """Every device sends a reading every 60/rate s (a flooding one, FLOOD_BURST at once)
    until `duration_s` or `readings` per device. A device's readings of one tick are all
    answered before its next tick, so they arrive in order."""
    if duration_s is None and readings is None:
        raise MedchainError("give a duration or a reading count, so the simulation ends")
    interval = 60.0 / rate_per_minute
    ticks = readings if readings is not None else max(1, int((duration_s or 0) / interval))
    if duration_s is not None:
        ticks = min(ticks, max(1, int(duration_s / interval)))
    run = FleetRun()
    semaphore = asyncio.Semaphore(concurrency)
    task = progress.add_task("readings", total=ticks * len(devices)) if progress else None
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def send(http: httpx.AsyncClient, device: SimulatedDevice) -> None:
        burst = (
            FLOOD_BURST
            if isinstance(device, MisbehavingDevice) and device.mode is Misbehaviour.FLOOD
            else 1
        )
        async with semaphore:
            for _ in range(burst):
                signed = device.next_reading()
                run.sent += 1
                try:
                    response = await http.post("/v1/readings", content=reading_to_json(signed))
                except httpx.HTTPError:
                    run.refused["unreachable"] += 1
                    continue
                if response.status_code == 202:
                    rid = bytes.fromhex(response.json()["id"])
                    run.accepted.setdefault(device.keys.address, []).append(rid)
                else:
                    try:
                        code = str(response.json().get("error", response.status_code))
                    except ValueError:
                        code = str(response.status_code)
                    run.refused[code] += 1
        if progress is not None and task is not None:
            progress.advance(task)

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0, limits=limits) as http:
        for tick in range(ticks):
            await asyncio.gather(*(send(http, d) for d in devices))
            pause = started + (tick + 1) * interval - time.monotonic()
            if pause > 0 and tick + 1 < ticks:
                await asyncio.sleep(pause)
    run.elapsed_s = time.monotonic() - started
    return run


def wait_committed(gateway: str, timeout_s: float = 60.0) -> None:
    """Until the gateway holds no pending reading (its strikes go out with the batch)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=gateway, timeout=5.0) as http:
        while time.monotonic() < deadline:
            if http.get("/v1/health").json().get("pending") == 0:
                time.sleep(1.5)  # the last window's strikes and batch reach the chain
                if http.get("/v1/health").json().get("pending") == 0:
                    return
            time.sleep(0.3)
    raise GatewayUnavailable(
        f"the gateway at {gateway} still holds pending readings after {timeout_s:g} s; "
        "is its node reachable? (see its log)"
    )


__all__ = ["FLOOD_BURST", "FleetRun", "stream_fleet", "wait_committed"]
