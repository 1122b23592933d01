"""Authenticated reads: a node serves nothing sealed to an unsigned read (401) or to a
signer who may not read it (403), on every route that serves wraps or ciphertext;
grants are honoured only while in force; a request signed for anything else than
what is sent is refused; the owner and their proxy are served; and each served read
leaves exactly one Disclosure saying who read what, for which purpose, on what basis."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from medchain.app import (
    MS_PER_DAY,
    Bundle,
    DeviceKind,
    ProxyRelation,
    ProxyScope,
    PurposeOfUse,
    ReaderGrant,
    Role,
    put_reader_grant,
)
from medchain.app._records import _record_key
from medchain.app._registry import identity_key
from medchain.app._state import save
from medchain.client import MedchainClient
from medchain.client._proxies import add_proxy
from medchain.crypto import (
    KEY_WRAP_HEADER,
    READ_REQUEST_WINDOW_MS,
    AccountKeys,
    sign_read_request,
)
from medchain.node import Disclosure, DisclosureKind, ReadBasis
from medchain.types import encode
from tests.api.conftest import EXAMPLES, SCOPE, World
from tests.api.harness import read_as, registered_gateway

TREAT, PATRQT = PurposeOfUse.TREATMENT, PurposeOfUse.PATIENT_REQUEST
DAY = 20_600


@dataclass(frozen=True)
class Route:
    """One read of sealed data, and who may make it."""

    name: str
    method: str
    url: str
    reader: Callable[[World], MedchainClient]
    json: dict[str, Any] | None = None


def _vitals(world: World) -> tuple[str, str]:
    """A committed batch holding a bundle of the patient's readings: (batch id, CID)."""
    device = AccountKeys.generate()
    world.patient.register_device(device, world.patient.address, DeviceKind.THERMOMETER)
    gateway = MedchainClient(registered_gateway(world.chain), world.chain)
    bundle = b"a sealed bundle of readings"
    cid = world.chain.blobs.put(bundle)
    t0 = DAY * MS_PER_DAY
    sealed = Bundle(
        world.patient.address, cid, hashlib.sha256(bundle).digest(), 1, t0, t0, (device.address,)
    )
    batch_id = gateway.commit_batch(hashlib.sha256(b"root").digest(), 1, [sealed])
    return batch_id.hex(), cid


def _routes(world: World) -> list[Route]:
    rid = world.record_id.hex()
    version = world.chain.record_version(world.record_id, 1)
    (copy,) = world.chain.research_data(world.lab.address)
    (contribution,) = world.chain.anon_entries(SCOPE)
    assert version is not None
    batch_id, bundle_cid = _vitals(world)
    patient, lab = world.patient.keys.address_text, world.lab.keys.address_text
    token = {"owner": world.doctor.keys.address_text, "token": encode(world.token).hex()}
    t0 = DAY * MS_PER_DAY

    def doctor(w: World) -> MedchainClient:
        return w.doctor

    def owner(w: World) -> MedchainClient:
        return w.patient

    def institution(w: World) -> MedchainClient:
        return w.lab

    return [
        Route("wraps", "GET", f"/v1/records/{rid}/versions/1", doctor),
        Route("body", "GET", f"/v1/records/{rid}/versions/1/body", doctor),
        Route("blob", "GET", f"/v1/blobs/{version.cid}?record={rid}&version=1", doctor),
        Route("research", "GET", f"/v1/research/{lab}", institution),
        Route(
            "research blob",
            "GET",
            f"/v1/blobs/{copy.cid}?institution={lab}&record={rid}",
            institution,
        ),
        Route(
            "contribution",
            "GET",
            f"/v1/blobs/{contribution.cid}?scope={SCOPE}&index=0",
            institution,
        ),
        Route("search", "POST", "/v1/search", doctor, token),
        Route("vitals", "GET", f"/v1/patients/{patient}/vitals?from_ms={t0}&to_ms={t0}", owner),
        Route("bundle", "GET", f"/v1/blobs/{bundle_cid}?batch={batch_id}&patient={patient}", owner),
    ]


def _read(world: World, route: Route, auth: httpx.Auth | None = None, **kw: Any) -> httpx.Response:
    return world.api.request(route.method, route.url, json=route.json, auth=auth, **kw)


def _code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_every_protected_route_serves_nothing_unsigned_or_unauthorised(world: World) -> None:
    stranger = MedchainClient(AccountKeys.generate(), world.chain)  # not even registered
    for route in _routes(world):
        unsigned = _read(world, route)
        assert (unsigned.status_code, _code(unsigned)) == (401, "read_unsigned"), route.name
        assert unsigned.headers["www-authenticate"] == "Medchain-Read"
        refused = _read(world, route, read_as(stranger))
        assert refused.status_code == 403, (route.name, refused.text)
        assert _code(refused) == "read_not_authorised"
        assert stranger.keys.address_text in refused.json()["error"]["message"]
        served = _read(world, route, read_as(route.reader(world)))
        assert served.status_code == 200, (route.name, served.text)
    assert all(d.reader != stranger.address for d in world.node.disclosures.entries)


def test_each_served_read_leaves_exactly_one_disclosure(world: World) -> None:
    expected = {
        "wraps": (DisclosureKind.WRAPS, ReadBasis.READER, 1),
        "body": (DisclosureKind.BODY, ReadBasis.READER, 1),
        "blob": (DisclosureKind.BODY, ReadBasis.READER, 1),
        "research": (DisclosureKind.RESEARCH_COPY, ReadBasis.RESEARCH, 1),
        "research blob": (DisclosureKind.RESEARCH_COPY, ReadBasis.RESEARCH, 1),
        "contribution": (DisclosureKind.RESEARCH_COPY, ReadBasis.RESEARCH, 0),
        "search": (DisclosureKind.SEARCH, ReadBasis.OWNER, 0),
        "vitals": (DisclosureKind.VITALS, ReadBasis.OWNER, 0),
        "bundle": (DisclosureKind.VITALS, ReadBasis.OWNER, 0),
    }
    log = world.node.disclosures.entries
    for route in _routes(world):
        reader = route.reader(world)
        before = len(log)
        started = time.time_ns() // 1_000_000
        assert _read(world, route, read_as(reader, TREAT)).status_code == 200, route.name
        (entry,) = log[before:]
        kind, basis, version = expected[route.name]
        assert (entry.kind, entry.basis, entry.version) == (kind, basis, version), route.name
        assert entry.reader == reader.address and entry.purpose == "TREAT"
        assert started <= entry.time_ms <= time.time_ns() // 1_000_000
        if route.name == "search":
            assert entry.patient == world.doctor.address  # the index searched is the doctor's
        elif route.name == "contribution":
            assert entry.patient == b""  # anonymous by design: nobody's to account to
        else:
            assert entry.patient == world.patient.address, route.name
        if kind in (DisclosureKind.WRAPS, DisclosureKind.BODY, DisclosureKind.RESEARCH_COPY):
            assert entry.record_id in (world.record_id, b""), route.name


def test_the_version_read_is_disclosed_with_every_field(world: World) -> None:
    route = f"/v1/records/{world.record_id.hex()}/versions/1"
    response = world.api.get(route, auth=read_as(world.doctor, TREAT))
    assert response.status_code == 200
    (entry,) = world.node.disclosures.entries
    assert entry == Disclosure(
        entry.time_ms,
        world.doctor.address,
        world.patient.address,
        DisclosureKind.WRAPS,
        "TREAT",
        ReadBasis.READER,
        world.record_id,
        1,
    )


def _grant(world: World, expires_ms: int) -> None:
    """The doctor's terms on the record, as records.warrant with an expiry stores them."""
    state = world.chain.ledger.state
    with state.layer():
        put_reader_grant(
            state, ReaderGrant(world.record_id, world.doctor.address, (TREAT,), expires_ms, 1)
        )


def test_an_expired_grant_is_refused_and_one_in_force_served(world: World) -> None:
    route = f"/v1/records/{world.record_id.hex()}/versions/1/body"
    now = time.time_ns() // 1_000_000
    _grant(world, now - 1)
    refused = world.api.get(route, auth=read_as(world.doctor))
    assert refused.status_code == 403 and "expired at" in refused.json()["error"]["message"]
    _grant(world, now + 600_000)
    assert world.api.get(route, auth=read_as(world.doctor)).status_code == 200
    other_purpose = world.api.get(route, auth=read_as(world.doctor, PurposeOfUse.PAYMENT))
    assert other_purpose.status_code == 403 and "not HPAYMT" in other_purpose.text
    assert len(world.node.disclosures.entries) == 1  # the one read served


def test_the_owner_and_their_read_proxy_are_served(world: World) -> None:
    carer = MedchainClient(AccountKeys.generate(), world.chain)
    carer.register(Role.PATIENT, "A carer")
    route = f"/v1/records/{world.record_id.hex()}/versions/1"
    assert world.api.get(route, auth=read_as(carer)).status_code == 403
    add_proxy(world.patient, carer.address, ProxyRelation.CARER, [ProxyScope.READ])
    assert world.api.get(route, auth=read_as(world.patient, PATRQT)).status_code == 200
    assert world.api.get(route, auth=read_as(carer)).status_code == 200
    owner, proxy = world.node.disclosures.entries
    assert (owner.basis, owner.purpose, owner.on_behalf) == (ReadBasis.OWNER, "PATRQT", b"")
    assert (proxy.basis, proxy.reader) == (ReadBasis.PROXY, carer.address)
    assert proxy.on_behalf == world.patient.address


def _signed(
    keys: AccountKeys,
    *,
    chain_id: str = "medchain-test",
    method: str = "GET",
    target: str,
    time_ms: int | None = None,
) -> dict[str, str]:
    now = time.time_ns() // 1_000_000 if time_ms is None else time_ms
    return {"authorization": sign_read_request(keys, chain_id, method, target, now, "TREAT", b"")}


def test_a_request_signed_for_anything_else_is_refused(world: World) -> None:
    keys, rid = world.doctor.keys, world.record_id.hex()
    path = f"/v1/records/{rid}/versions/1"
    now = time.time_ns() // 1_000_000
    assert world.api.get(path, headers=_signed(keys, target=path)).status_code == 200
    refusals = {
        "path": _signed(keys, target=f"{path}/body"),
        "query": _signed(keys, target=f"{path}?x=1"),
        "method": _signed(keys, target=path, method="POST"),
        "chain": _signed(keys, target=path, chain_id="another-chain"),
        "stale": _signed(keys, target=path, time_ms=now - READ_REQUEST_WINDOW_MS - 5_000),
        "ahead": _signed(keys, target=path, time_ms=now + READ_REQUEST_WINDOW_MS + 5_000),
    }
    for what, headers in refusals.items():
        response = world.api.get(path, headers=headers)
        assert response.status_code == 401, (what, response.text)
        assert _code(response) == "read_request_invalid", what
    assert len(world.node.disclosures.entries) == 1


def test_a_malformed_header_or_unknown_purpose_says_what_to_send(world: World) -> None:
    path = f"/v1/records/{world.record_id.hex()}/versions/1"
    bad = world.api.get(path, headers={"authorization": "Bearer abc"})
    assert bad.status_code == 401 and "Medchain-Read" in bad.json()["error"]["message"]
    header = sign_read_request(
        world.doctor.keys, "medchain-test", "GET", path, time.time_ns() // 1_000_000, "BOGUS"
    )
    unknown = world.api.get(path, headers={"authorization": header})
    assert unknown.status_code == 400 and _code(unknown) == "unknown_purpose"


def test_a_blob_named_as_something_that_does_not_hold_it_is_404(world: World) -> None:
    version = world.chain.record_version(world.record_id, 1)
    assert version is not None
    condition = json.loads((EXAMPLES / "condition.json").read_text())
    other = world.doctor.put_record(world.patient.address, condition)
    url = f"/v1/blobs/{version.cid}?record={other.hex()}&version=1"
    response = world.api.get(url, auth=read_as(world.doctor))
    assert response.status_code == 404 and _code(response) == "blob_not_named"


def test_what_every_validator_sees_stays_public(world: World) -> None:
    rid = world.record_id.hex()
    for path in (f"/v1/records/{rid}", f"/v1/records/{rid}/audit"):
        assert world.api.get(path).status_code == 200, path  # owner, readers, audit
    assert world.node.disclosures.entries == []


def test_an_erased_record_is_410_on_every_record_read(world: World) -> None:
    record = world.chain.record(world.record_id)
    assert record is not None
    state = world.chain.ledger.state
    with state.layer():  # as records.erase leaves it
        erased = dataclasses.replace(
            record, erased_height=9, erased_ms=1, erased_by=world.patient.address
        )
        save(state, _record_key(world.record_id), erased)
    for route in _routes(world)[:3]:  # the version's wraps, body and blob
        response = _read(world, route, read_as(world.patient))
        assert response.status_code == 410, (route.name, response.text)
        assert _code(response) == "record_erased" and "erased at height 9" in response.text
    assert world.node.disclosures.entries == []


def test_a_registered_non_reader_may_search_as_a_capability_holder_only(world: World) -> None:
    """A search capability is sealed off-chain, so the node serves a registered signer
    (logged) but nothing else: the values it gets open only with the capability."""
    someone = MedchainClient(AccountKeys.generate(), world.chain)
    someone.register(Role.PATIENT, "Someone")
    routes = {r.name: r for r in _routes(world)}
    assert _read(world, routes["search"], read_as(someone)).status_code == 200
    for name in ("wraps", "body", "blob", "vitals", "research"):
        assert _read(world, routes[name], read_as(someone)).status_code == 403, name
    (entry,) = world.node.disclosures.entries
    assert (entry.kind, entry.basis, entry.reader) == (
        DisclosureKind.SEARCH,
        ReadBasis.READER,
        someone.address,
    )


def test_a_key_the_account_rotated_away_from_is_refused(world: World) -> None:
    identity = world.chain.identity(world.doctor.address)
    assert identity is not None
    state = world.chain.ledger.state
    with state.layer():  # as keys.rotate leaves the account
        rotated = dataclasses.replace(identity, public_key=AccountKeys.generate().public_key)
        save(state, identity_key(world.doctor.address), rotated)
        state.set(b"keyof/" + world.doctor.address, world.doctor.address)  # its first key
    route = f"/v1/records/{world.record_id.hex()}/versions/1"
    response = world.api.get(route, auth=read_as(world.doctor))
    assert response.status_code == 401 and _code(response) == "key_retired"
    assert "current key file" in response.json()["error"]["message"]


def test_a_version_body_carries_the_signers_own_key_wrap(world: World) -> None:
    """One signed request opens a record: the ciphertext, named by its ETag, and the
    signer's wrap (nobody else's) in a header."""
    route = f"/v1/records/{world.record_id.hex()}/versions/1/body"
    version = world.chain.record_version(world.record_id, 1)
    assert version is not None
    wraps = {w.reader: w.wrapped_key for w in version.wraps}
    for reader in (world.patient, world.doctor):
        response = world.api.get(route, auth=read_as(reader))
        assert response.status_code == 200
        assert response.headers["etag"] == f'"{version.cid}"'
        assert bytes.fromhex(response.headers[KEY_WRAP_HEADER]) == wraps[reader.address]
