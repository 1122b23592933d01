"""A ward's patient wearing a device whose readings reach the chain through an edge
gateway (the gateway's pipeline in this process, on the ward's node over HTTP): what
the vitals pages draw."""

from __future__ import annotations

import json
import time

from medchain.app import DeviceKind as ChainDeviceKind
from medchain.client import HttpChain
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import (
    DeviceKind,
    GatewayConfig,
    GatewayService,
    ReadingIndex,
    SignedReading,
    SimulatedDevice,
)
from tests.api.harness import admin
from tests.web.conftest import Ward

MINUTE_MS = 60_000
_CHAIN_KINDS = {
    DeviceKind.HEART_RATE_BAND: ChainDeviceKind.HEART_RATE,
    DeviceKind.BLOOD_PRESSURE_CUFF: ChainDeviceKind.BLOOD_PRESSURE,
}


def wear_device(
    ward: Ward, chain: HttpChain, kind: DeviceKind = DeviceKind.HEART_RATE_BAND
) -> SimulatedDevice:
    """A device of `kind` on the ward's patient, registered by the hospital."""
    device = SimulatedDevice(
        kind, format_address(ward.patient.address), keys=AccountKeys.generate()
    )
    on_chain = _CHAIN_KINDS.get(kind, ChainDeviceKind.PULSE_OXIMETER)
    admin(chain).register_device(device.keys, ward.patient.address, on_chain, "a band")
    return device


def send_readings(
    chain: HttpChain, device: SimulatedDevice, count: int, start_ms: int, every_ms: int = MINUTE_MS
) -> list[SignedReading]:
    """`count` readings of `device` from `start_ms`, `every_ms` apart, sent through a new
    gateway and committed."""
    gateway = AccountKeys.generate()
    admin(chain).register_gateway(gateway.address, "ward 3")
    service = GatewayService(
        gateway,
        chain,
        ReadingIndex(":memory:"),
        GatewayConfig(rate_per_minute=10**9, rate_burst=max(20, count)),
    )
    device.now_ms, device.interval_ms = start_ms, every_ms
    sent = [device.next_reading() for _ in range(count)]
    for reading in sent:
        service.submit(reading)
    service.flush()
    return sent


def sent_values(sent: list[SignedReading]) -> list[float]:
    """The value each reading's Observation carries."""
    return [float(json.loads(s.reading.observation)["valueQuantity"]["value"]) for s in sent]


def hours_ago(hours: int) -> int:
    return int(time.time() * 1000) - hours * 3_600_000
