"""The edge tier as a whole: GET /v1/fleet counts gateways and devices (by kind and by
state in force) as reading every one from the state does; GET /v1/gateways lists the
gateways a page at a time; an unknown gateway is 404, a page out of range 400."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from medchain.app import (
    DeviceKind,
    DeviceOffence,
    RegisterGatewayArgs,
    ReportArgs,
    RevokeGatewayArgs,
    Role,
)
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys, format_address
from medchain.node import LocalChain
from tests.api.harness import HOSPITAL, FakeNode, admin, api_client, make_chain, ok, refused


@dataclass
class Edge:
    chain: LocalChain
    api: httpx.Client
    devices: list[bytes]
    ward: AccountKeys
    """An active gateway."""
    spare: AccountKeys
    """A revoked gateway."""


@pytest.fixture
def edge() -> Edge:
    chain = make_chain(device_strikes_restrict=1, device_restrict_blocks=1_000)
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "Jane Roe")
    hospital = admin(chain)
    kinds = (DeviceKind.HEART_RATE, DeviceKind.HEART_RATE, DeviceKind.ECG)
    devices = [AccountKeys.generate() for _ in kinds]
    for device, kind in zip(devices, kinds, strict=True):
        hospital.register_device(device, patient.address, kind, "a band")
    ward, spare = AccountKeys.generate(), AccountKeys.generate()
    hospital.send("devices.register_gateway", RegisterGatewayArgs(ward.address, "ward 3"))
    hospital.send("devices.register_gateway", RegisterGatewayArgs(spare.address, "spare"))
    hospital.send("devices.revoke_gateway", RevokeGatewayArgs(spare.address))
    MedchainClient(chain.validator, chain).transfer(ward.address, 10_000)
    report = ReportArgs(devices[0].address, DeviceOffence.REPLAY, b"log 1")
    MedchainClient(ward, chain).send("devices.report", report)  # restricts it: one strike
    return Edge(chain, api_client(FakeNode(chain)), [d.address for d in devices], ward, spare)


def test_the_fleet_counts_what_the_state_holds(edge: Edge) -> None:
    body = ok(edge.api.get("/v1/fleet"))
    height = edge.chain.height
    in_state: Counter[tuple[str, str]] = Counter()
    for address in edge.devices:
        device = edge.chain.device(address)
        assert device is not None
        in_state[device.kind.value, device.state_at(height).value] += 1
    assert body["height"] == height and body["complete_from"] == 0
    assert {(c["kind"], c["state"]): c["count"] for c in body["devices"]} == in_state
    assert in_state == {
        ("heart_rate", "restricted"): 1,
        ("heart_rate", "active"): 1,
        ("ecg", "active"): 1,
    }
    assert body["device_total"] == 3
    assert (body["gateways_active"], body["gateways_revoked"]) == (1, 1)


def test_gateways_are_listed_in_registration_order(edge: Edge) -> None:
    body = ok(edge.api.get("/v1/gateways"))
    assert (body["total"], body["start"], body["complete_from"]) == (2, 0, 0)
    ward, spare = body["gateways"]
    assert ward["address"] == format_address(edge.ward.address)
    assert (ward["label"], ward["active"], ward["org_id"], ward["org_member"]) == (
        "ward 3",
        True,
        HOSPITAL.org_id,
        True,
    )
    assert ward["encoded"] == ok(edge.api.get(f"/v1/gateways/{ward['address']}"))["encoded"]
    assert spare["address"] == format_address(edge.spare.address) and spare["active"] is False
    second = ok(edge.api.get("/v1/gateways?start=1&count=1"))
    assert second["total"] == 2 and second["gateways"] == [spare]
    assert ok(edge.api.get("/v1/gateways?start=5"))["gateways"] == []


def test_an_unknown_gateway_is_404_and_a_bad_page_400(edge: Edge) -> None:
    nobody = format_address(AccountKeys.generate().address)
    message = refused(edge.api.get(f"/v1/gateways/{nobody}"), 404, "unknown_gateway")
    assert nobody in message and "register" in message
    refused(edge.api.get("/v1/gateways?count=0"), 400, "out_of_range")
    refused(edge.api.get("/v1/gateways?count=501"), 400, "out_of_range")
    refused(edge.api.get("/v1/gateways?start=-1"), 400, "out_of_range")


def test_documented_under_devices(edge: Edge) -> None:
    paths = ok(edge.api.get("/openapi.json"))["paths"]
    assert paths["/v1/fleet"]["get"]["tags"] == ["devices"]
    assert paths["/v1/gateways"]["get"]["tags"] == ["devices"]
