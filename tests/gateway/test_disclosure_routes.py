"""The gateway's disclosure log over HTTP, with the node's routes: a patient's entries
to the patient and their `read` proxy only (a signed read), everyone's salted hashes to
anyone; on a LocalChain, in process."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx

from medchain.app import ProxyRelation, ProxyScope, PurposeOfUse, Role
from medchain.client import MedchainClient, ReadAuth, add_proxy
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import ACCESS_CACHE_S
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import create_gateway_app
from medchain.gateway._service import GatewayService
from medchain.node import DISCLOSURES_FILE, SqliteDisclosureLog
from medchain.types import LoggedDisclosure, decode, entry_hash
from tests.api.harness import SyncASGITransport
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)


def _http(service: GatewayService) -> httpx.Client:
    app = create_gateway_app(service, background=False, threads=False)
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://gw")


def _as(world: World, keys: AccountKeys) -> httpx.Auth:  # noqa: F811
    return ReadAuth(keys, world.chain.chain_id, PurposeOfUse.PATIENT_REQUEST)


def _asked_twice(world: World, service: GatewayService) -> bytes:  # noqa: F811
    """A committed reading of the world's patient whose status its device and the
    patient asked for (two entries in the gateway's log); its id."""
    sim = world.device()
    rid = service.submit(sim.next_reading()).reading_id
    service.flush()
    with _http(service) as http:
        for keys in (sim.keys, world.patient.keys):
            answer = http.get(f"/v1/readings/{rid.hex()}", auth=_as(world, keys))
            assert answer.status_code == 200, answer.text
    return rid


def _query(world: World) -> str:  # noqa: F811
    return "/v1/disclosures?" + urlencode({"patient": format_address(world.patient.address)})


def _logging(world: World, tmp_path: Path) -> tuple[SqliteDisclosureLog, GatewayService]:  # noqa: F811
    """A gateway service whose log is a file, as when it runs from its home."""
    log = SqliteDisclosureLog(tmp_path / DISCLOSURES_FILE, world.gateway_keys.address)
    return log, world.service(ReadingIndex(":memory:"), disclosures=log)


def test_the_patient_and_their_read_proxy_see_the_gateways_entries(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    log, service = _logging(world, tmp_path)
    rid = _asked_twice(world, service)
    proxy = MedchainClient(AccountKeys.generate(), world.chain)
    proxy.register(Role.PATIENT, "a carer")
    add_proxy(world.patient, proxy.address, ProxyRelation.CARER, [ProxyScope.READ])
    world.clock.now += ACCESS_CACHE_S  # the patient's facts, cached by the reads, lapse
    with _http(service) as http:
        for keys in (world.patient.keys, proxy.keys):
            answer = http.get(_query(world), auth=_as(world, keys))
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["node"] == format_address(world.gateway_keys.address)
            assert body["length"] == 2
            entries = body["entries"]
            assert [e["seq"] for e in entries] == [1, 2]
            assert [e["basis"] for e in entries] == ["device", "owner"]
            assert all(rid.hex() in e["detail"] and e["kind"] == "vitals" for e in entries)
        hashes = http.get("/v1/disclosures/hashes").json()
        assert (hashes["node"], hashes["length"], hashes["first"]) == (
            format_address(world.gateway_keys.address),
            2,
            1,
        )
        logged = [decode(LoggedDisclosure, bytes.fromhex(e["encoded"])) for e in entries]
        assert [entry_hash(e).hex() for e in logged] == hashes["hashes"]
        assert (
            http.get("/v1/disclosures/hashes?from=2&to=2").json()["hashes"] == hashes["hashes"][1:]
        )
    log.close()


def test_nobody_else_sees_a_patients_entries(world: World, tmp_path: Path) -> None:  # noqa: F811
    log, service = _logging(world, tmp_path)
    _asked_twice(world, service)
    with _http(service) as http:
        unsigned = http.get(_query(world))
        assert unsigned.status_code == 401
        assert unsigned.json()["error"]["code"] == "read_unsigned"
        # a guardian (a `devices` proxy) asks about readings, but sees no disclosures
        refused = http.get(_query(world), auth=_as(world, world.guardian.keys))
        assert refused.status_code == 403
        assert "read scope" in refused.json()["error"]["message"]
        stranger = AccountKeys.generate()
        unknown = f"/v1/disclosures?patient={format_address(stranger.address)}"
        assert http.get(unknown, auth=_as(world, stranger)).status_code == 404
        bad = http.get("/v1/disclosures?patient=mc1nope", auth=_as(world, world.patient.keys))
        assert bad.status_code == 400
    log.close()


def test_a_gateway_without_a_log_file_says_so(world: World) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))  # in memory: nothing to serve
    with _http(service) as http:
        answer = http.get("/v1/disclosures/hashes")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "no_disclosure_log"
