"""The devices endpoints: devices with the state in force, audit trails, a patient's
devices, guardians, vitals readers and vitals over a time range, gateways and batches;
unknown is 404, malformed 400."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from medchain.api import MAX_DEVICE_LOOKUP
from medchain.app import (
    MAX_TIME_MS,
    MS_PER_DAY,
    Batch,
    Bundle,
    CommitBatchArgs,
    Device,
    DeviceAuditEntry,
    DeviceKind,
    DeviceOffence,
    DeviceState,
    Gateway,
    PurposeOfUse,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    ReportArgs,
    Role,
    SetStateArgs,
    VitalsEntry,
    new_batch_id,
    registration_message,
    restriction_lapses,
)
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys, format_address, sha256
from medchain.node import LocalChain
from medchain.offchain import cid_for
from medchain.types import decode
from tests.api.harness import (
    HOSPITAL,
    FakeNode,
    admin,
    api_client,
    make_chain,
    ok,
    read_as,
    refused,
)

T0 = 19_844 * MS_PER_DAY  # 2024-05-01T00:00:00Z


@dataclass
class Devices:
    chain: LocalChain
    api: httpx.Client
    patient: MedchainClient
    guardian: MedchainClient
    hospital: MedchainClient
    gateway: MedchainClient
    device: AccountKeys
    batch_id: bytes


def _person(chain: LocalChain, role: Role, name: str) -> MedchainClient:
    client = MedchainClient(AccountKeys.generate(), chain)
    client.register(role, name)
    return client


@pytest.fixture
def world() -> Devices:
    chain = make_chain(device_strikes_restrict=1, device_restrict_blocks=1_000)
    patient = _person(chain, Role.PATIENT, "Jane Roe")
    guardian = _person(chain, Role.PATIENT, "John Roe")
    hospital = admin(chain)
    gateway = MedchainClient(AccountKeys.generate(), chain)
    validator = MedchainClient(chain.validator, chain)
    validator.transfer(gateway.address, 10_000)
    device = AccountKeys.generate()
    patient.add_guardian(guardian.address)
    guardian.register_device(device, patient.address, DeviceKind.HEART_RATE, "wrist")
    hospital.send("devices.register_gateway", RegisterGatewayArgs(gateway.address, "ward 3"))
    gateway.send("devices.report", ReportArgs(device.address, DeviceOffence.REPLAY, b"log 1"))
    nonce = chain.account(gateway.address).nonce
    bundle = Bundle(
        patient.address, cid_for(b"bundle"), sha256(b"bundle"), 3, T0, T0 + 10, (device.address,)
    )
    gateway.send("devices.commit_batch", CommitBatchArgs(b"\x07" * 32, 3, (bundle,)))
    return Devices(
        chain,
        api_client(FakeNode(chain)),
        patient,
        guardian,
        hospital,
        gateway,
        device,
        new_batch_id(gateway.address, nonce),
    )


def test_device_with_the_state_in_force(world: Devices) -> None:
    address = world.device.address_text
    body = ok(world.api.get(f"/v1/devices/{address}"))
    device = world.chain.device(world.device.address)
    assert device is not None and decode(Device, bytes.fromhex(body["encoded"])) == device
    assert body["device"] == address and body["key"] == world.device.public_key.hex()
    assert body["patient"] == format_address(world.patient.address)
    assert body["registered_by"] == format_address(world.guardian.address)
    readers = sorted([world.patient.address, world.guardian.address])
    assert body["kind"] == "heart_rate" and "wrist" not in str(body)
    assert body["label"] == {"sealed": True, "readers": [format_address(r) for r in readers]}
    assert (body["state"], body["stored_state"], body["strikes"]) == ("restricted",) * 2 + (1,)
    assert body["restricted_until"] == device.restricted_until > 0
    assert body["height"] == world.chain.height and body["reason"] == "replay"
    assert body["evidence_hash"] == sha256(b"log 1").hex()


def test_a_lapsed_restriction_reads_as_active() -> None:
    chain = make_chain(device_strikes_restrict=1, device_restrict_blocks=1)
    patient = _person(chain, Role.PATIENT, "P")
    hospital = admin(chain)
    device = AccountKeys.generate()
    proof = device.sign(registration_message(chain.chain_id, patient.address))
    patient.send(
        "devices.register",
        RegisterDeviceArgs(device.public_key, patient.address, DeviceKind.ECG, b"", proof),
    )
    hospital.send("devices.register_gateway", RegisterGatewayArgs(hospital.address, "self"))
    hospital.send("devices.report", ReportArgs(device.address, DeviceOffence.RATE_LIMIT, b"x"))
    api = api_client(FakeNode(chain))
    assert ok(api.get(f"/v1/devices/{device.address_text}"))["state"] == "restricted"
    validator = MedchainClient(chain.validator, chain)
    validator.transfer(patient.address, 1)  # two blocks later the restriction has lapsed
    validator.transfer(patient.address, 1)
    body = ok(api.get(f"/v1/devices/{device.address_text}"))
    assert (body["state"], body["stored_state"]) == ("active", "restricted")
    # its audit trail says when: the lapse writes no entry, the strike's entry tells it
    audit = ok(api.get(f"/v1/devices/{device.address_text}/audit"))
    strike = audit["entries"][-1]
    assert strike["state"] == "restricted" and audit["height"] == chain.height
    assert strike["lapsed_at"] == strike["restricted_until"] + 1 <= chain.height


def _lookup(api: httpx.Client, addresses: list[str]) -> httpx.Response:
    return api.post("/v1/devices/lookup", json={"devices": addresses})


def test_lookup_answers_each_address_in_order_at_one_height(world: Devices) -> None:
    address = world.device.address_text
    nobody = AccountKeys.generate().address_text
    body = ok(_lookup(world.api, [nobody, address, address]))
    assert body["height"] == world.chain.height
    first, one, again = body["devices"]
    assert first is None and one == again
    assert one == ok(world.api.get(f"/v1/devices/{address}"))  # the same model, `encoded` too
    assert decode(Device, bytes.fromhex(one["encoded"])) == world.chain.device(world.device.address)
    assert ok(_lookup(world.api, [])) == {"height": world.chain.height, "devices": []}


def test_lookup_reads_the_state_in_force_at_its_height() -> None:
    chain = make_chain(device_strikes_restrict=1, device_restrict_blocks=1)
    patient = _person(chain, Role.PATIENT, "P")
    hospital = admin(chain)
    device = AccountKeys.generate()
    proof = device.sign(registration_message(chain.chain_id, patient.address))
    patient.send(
        "devices.register",
        RegisterDeviceArgs(device.public_key, patient.address, DeviceKind.ECG, b"", proof),
    )
    hospital.send("devices.register_gateway", RegisterGatewayArgs(hospital.address, "self"))
    hospital.send("devices.report", ReportArgs(device.address, DeviceOffence.RATE_LIMIT, b"x"))
    api = api_client(FakeNode(chain))
    (restricted,) = ok(_lookup(api, [device.address_text]))["devices"]
    assert restricted["state"] == "restricted" and restricted["height"] == chain.height
    validator = MedchainClient(chain.validator, chain)
    validator.transfer(patient.address, 1)  # two blocks later the restriction has lapsed
    validator.transfer(patient.address, 1)
    body = ok(_lookup(api, [device.address_text]))
    (lapsed,) = body["devices"]
    assert (lapsed["state"], lapsed["stored_state"]) == ("active", "restricted")
    assert lapsed["height"] == body["height"] == chain.height
    stored = decode(Device, bytes.fromhex(lapsed["encoded"]))
    assert stored.state_at(body["height"]) is DeviceState.ACTIVE


def test_lookup_of_more_than_the_limit_is_413(world: Devices) -> None:
    address = world.device.address_text
    assert len(ok(_lookup(world.api, [address] * MAX_DEVICE_LOOKUP))["devices"]) == 1_000
    message = refused(
        _lookup(world.api, [address] * (MAX_DEVICE_LOOKUP + 1)), 413, "too_many_devices"
    )
    assert "1,001 devices" in message and "limit of 1,000" in message and "split" in message


def test_recipients_lookup(world: Devices) -> None:
    patient = format_address(world.patient.address)
    nobody = AccountKeys.generate().address_text
    body = ok(world.api.post("/v1/patients/recipients", json={"patients": [patient, nobody]}))
    mine, none = body["patients"]
    assert mine["patient"] == patient and none == {"patient": nobody, "recipients": None}
    listed = {r["address"]: r["encryption_key"] for r in mine["recipients"]}
    (expected,) = world.chain.vitals_recipients([world.patient.address])
    assert expected is not None
    assert listed == {format_address(a): k.hex() for a, k in expected.items()}
    assert format_address(world.guardian.address) in listed
    too_many = {"patients": [patient] * (MAX_DEVICE_LOOKUP + 1)}
    message = refused(
        world.api.post("/v1/patients/recipients", json=too_many), 413, "too_many_patients"
    )
    assert "1,001 patients" in message and "split" in message
    bad = {"patients": [patient, "mc1nope"]}
    message = refused(world.api.post("/v1/patients/recipients", json=bad), 400, "invalid_address")
    assert message.startswith("patients[1]: 'mc1nope'")


def test_lookup_names_a_malformed_address(world: Devices) -> None:
    addresses = [world.device.address_text, "mc1nope"]
    message = refused(_lookup(world.api, addresses), 400, "invalid_address")
    assert message.startswith("devices[1]: 'mc1nope'")
    for body in ({"devices": [7]}, {"devices": addresses[0]}, {}):
        refused(world.api.post("/v1/devices/lookup", json=body), 422, "invalid_request")
    refused(world.api.post("/v1/devices/lookup", content=b"{"), 400, "malformed_json")


def test_device_audit(world: Devices) -> None:
    body = ok(world.api.get(f"/v1/devices/{world.device.address_text}/audit"))
    assert body["device"] == world.device.address_text
    assert [e["action"] for e in body["entries"]] == ["registered", "strike"]
    assert body["entries"][1]["actor"] == format_address(world.gateway.address)
    assert body["entries"][1]["reason"] == "replay" and body["entries"][1]["strikes"] == 1
    trail = world.chain.device_audit(world.device.address)
    assert [decode(DeviceAuditEntry, bytes.fromhex(e["encoded"])) for e in body["entries"]] == trail
    assert body["height"] == world.chain.height
    lapses = restriction_lapses(trail, body["height"])
    assert [e["lapsed_at"] for e in body["entries"]] == lapses


def test_patient_devices_and_guardians(world: Devices) -> None:
    patient = format_address(world.patient.address)
    body = ok(world.api.get(f"/v1/patients/{patient}/devices"))
    assert body["patient"] == patient
    assert [d["device"] for d in body["devices"]] == [world.device.address_text]
    assert body["devices"][0]["state"] == "restricted"
    guardians = ok(world.api.get(f"/v1/patients/{patient}/guardians"))
    assert guardians == {"patient": patient, "guardians": [format_address(world.guardian.address)]}
    nobody = AccountKeys.generate().address_text  # well-formed, but no patient
    for path in ("devices", "guardians", "vitals-readers"):
        message = refused(world.api.get(f"/v1/patients/{nobody}/{path}"), 404, "not_registered")
        assert "not a patient on this chain" in message
    hospital = format_address(world.hospital.address)  # registered, but not a patient
    refused(world.api.get(f"/v1/patients/{hospital}/devices"), 404, "not_registered")


def test_gateway(world: Devices) -> None:
    body = ok(world.api.get(f"/v1/gateways/{format_address(world.gateway.address)}"))
    assert decode(Gateway, bytes.fromhex(body["encoded"])) == world.chain.gateway(
        world.gateway.address
    )
    assert body["registered_by"] == format_address(world.hospital.address)
    assert (body["label"], body["active"], body["batch_count"]) == ("ward 3", True, 1)


def test_batch(world: Devices) -> None:
    body = ok(world.api.get(f"/v1/batches/{world.batch_id.hex()}"))
    assert decode(Batch, bytes.fromhex(body["encoded"])) == world.chain.batch(world.batch_id)
    assert body["batch_id"] == world.batch_id.hex() and body["count"] == 3
    assert body["bundles_listed"] is True
    assert body["root"] == "07" * 32 and body["gateway"] == format_address(world.gateway.address)
    assert body["bundles"] == [
        {
            "patient": format_address(world.patient.address),
            "cid": cid_for(b"bundle"),
            "ciphertext_hash": sha256(b"bundle").hex(),
            "count": 3,
            "time_from_ms": T0,
            "time_to_ms": T0 + 10,
            "devices": [world.device.address_text],
        }
    ]


def _vitals(world: Devices, query: str, patient: bytes | None = None) -> httpx.Response:
    address = format_address(world.patient.address if patient is None else patient)
    signer = read_as(world.patient, PurposeOfUse.PATIENT_REQUEST)
    return world.api.get(f"/v1/patients/{address}/vitals?{query}", auth=signer)


def test_patient_vitals_over_a_range(world: Devices) -> None:
    body = ok(_vitals(world, f"from_ms={T0 + 10}&to_ms={T0 + MS_PER_DAY}"))
    assert body["patient"] == format_address(world.patient.address)
    assert (body["from_ms"], body["to_ms"], body["device"]) == (T0 + 10, T0 + MS_PER_DAY, None)
    assert body["complete_from"] == 0  # this node holds every block
    (entry,) = body["entries"]
    decoded = decode(VitalsEntry, bytes.fromhex(entry["encoded"]))
    assert [decoded] == world.chain.vitals(world.patient.address, T0, T0 + 10)
    assert entry["batch_id"] == world.batch_id.hex() and entry["root"] == "07" * 32
    assert (entry["count"], entry["time_from_ms"], entry["time_to_ms"]) == (3, T0, T0 + 10)
    assert entry["devices"] == [world.device.address_text] and entry["cid"] == cid_for(b"bundle")
    assert entry["height"] == decoded.height > 0
    assert ok(_vitals(world, f"from_ms={T0 + 11}&to_ms={T0 + 20}"))["entries"] == []
    device = world.device.address_text
    body = ok(_vitals(world, f"from_ms={T0}&to_ms={T0}&device={device}"))
    assert body["device"] == device and len(body["entries"]) == 1
    other = AccountKeys.generate().address_text
    assert ok(_vitals(world, f"from_ms={T0}&to_ms={T0}&device={other}"))["entries"] == []


def test_a_node_without_the_older_blocks_says_from_which_height_it_lists(
    world: Devices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a node that joined from a snapshot above the batch answers, until its
    backfill has fetched the batch's block."""
    batch = world.chain.batch(world.batch_id)
    assert batch is not None
    monkeypatch.setattr(world.chain, "vitals_complete_from", lambda: batch.height + 1)
    body = ok(_vitals(world, f"from_ms={T0}&to_ms={T0 + 10}"))
    assert body["complete_from"] == batch.height + 1
    body = ok(world.api.get(f"/v1/batches/{world.batch_id.hex()}"))
    assert body["bundles_listed"] is False and body["root"] == "07" * 32


def test_a_bad_vitals_range_is_400(world: Devices) -> None:
    message = refused(
        _vitals(world, f"from_ms={T0}&to_ms={T0 + 400 * MS_PER_DAY}"), 400, "invalid_argument"
    )
    assert "at most 366" in message and "split it" in message
    assert "from <= to" in refused(
        _vitals(world, f"from_ms={T0}&to_ms={T0 - 1}"), 400, "invalid_argument"
    )
    refused(_vitals(world, f"from_ms=-5&to_ms={T0}"), 400, "out_of_range")
    too_late = _vitals(world, f"from_ms={T0}&to_ms={MAX_TIME_MS + 1}")
    assert f"at most {MAX_TIME_MS}" in refused(too_late, 400, "out_of_range")
    refused(_vitals(world, f"from_ms={T0}&to_ms={T0}&device=mc1nope"), 400, "invalid_address")
    assert "to_ms" in refused(_vitals(world, f"from_ms={T0}"), 422, "invalid_request")


def test_vitals_of_an_unknown_patient_is_404(world: Devices) -> None:
    for who in (AccountKeys.generate().address, world.hospital.address):
        message = refused(_vitals(world, f"from_ms={T0}&to_ms={T0}", who), 404, "not_registered")
        assert "not a patient" in message
        path = f"/v1/patients/{format_address(who)}/vitals-readers"
        refused(world.api.get(path), 404, "not_registered")


def test_vitals_readers(world: Devices) -> None:
    patient = format_address(world.patient.address)
    path = f"/v1/patients/{patient}/vitals-readers"
    assert ok(world.api.get(path)) == {"patient": patient, "readers": []}
    hospital = HOSPITAL.account.address  # the hospital's own account
    world.patient.share_vitals(hospital)
    world.patient.share_vitals(world.guardian.address)
    readers = sorted([hospital, world.guardian.address])
    assert ok(world.api.get(path))["readers"] == [format_address(r) for r in readers]


def test_a_state_change_shows_at_once(world: Devices) -> None:
    device = AccountKeys.generate()  # one the hospital registers, so may ban
    world.hospital.register_device(device, world.patient.address, DeviceKind.ECG, "chest")
    world.hospital.send(
        "devices.set_state", SetStateArgs(device.address, DeviceState.BANNED, "tampered")
    )
    body = ok(world.api.get(f"/v1/devices/{device.address_text}"))
    assert (body["state"], body["reason"], body["restricted_until"]) == ("banned", "tampered", 0)


def test_unknown_is_404(world: Devices) -> None:
    nobody = AccountKeys.generate().address_text
    assert "register" in refused(world.api.get(f"/v1/devices/{nobody}"), 404, "unknown_device")
    refused(world.api.get(f"/v1/devices/{nobody}/audit"), 404, "unknown_device")
    assert "hospital" in refused(world.api.get(f"/v1/gateways/{nobody}"), 404, "unknown_gateway")
    refused(world.api.get(f"/v1/batches/{'ab' * 16}"), 404, "unknown_batch")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/devices/mc1nope",
        "/v1/devices/0xabc/audit",
        "/v1/patients/x/devices",
        "/v1/patients/x/guardians",
        "/v1/patients/x/vitals?from_ms=0&to_ms=1",
        "/v1/patients/x/vitals-readers",
        "/v1/gateways/abc",
    ],
)
def test_malformed_address_is_400(world: Devices, path: str) -> None:
    refused(world.api.get(path, auth=read_as(world.patient)), 400, "invalid_address")


def test_malformed_batch_id_is_400(world: Devices) -> None:
    assert "32 hex" in refused(world.api.get("/v1/batches/abcd"), 400, "invalid_hex")
    refused(world.api.get("/v1/batches/not-hex"), 400, "invalid_hex")


def test_documented_under_devices(world: Devices) -> None:
    paths = ok(world.api.get("/openapi.json"))["paths"]
    for path in (
        "/v1/devices/{address}",
        "/v1/devices/{address}/audit",
        "/v1/patients/{address}/devices",
        "/v1/patients/{address}/guardians",
        "/v1/patients/{address}/vitals",
        "/v1/patients/{address}/vitals-readers",
        "/v1/gateways/{address}",
        "/v1/batches/{batch_id}",
    ):
        assert paths[path]["get"]["tags"] == ["devices"], path
    assert paths["/v1/devices/lookup"]["post"]["tags"] == ["devices"]
