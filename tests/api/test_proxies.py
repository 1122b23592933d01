"""The proxies endpoints: a patient's proxies, the patients an account acts for, and
the required readers; each item carries its canonical encoding; unknown is 404."""

from __future__ import annotations

from medchain.api import create_api
from medchain.app import Proxy, ProxyRelation, ProxyScope, Role
from medchain.client import HttpChain, MedchainClient, add_proxy
from medchain.crypto import AccountKeys, format_address
from medchain.types import decode
from tests.api.harness import FakeNode, SyncASGITransport, api_client, make_chain, ok


def test_proxies_patients_and_required_readers() -> None:
    chain = make_chain()
    child, mother, carer = (MedchainClient(AccountKeys.generate(), chain) for _ in range(3))
    for person in (child, mother, carer):
        person.register(Role.PATIENT, "")
    add_proxy(child, mother.address, ProxyRelation.PARENT, (ProxyScope.READ, ProxyScope.GRANT))
    add_proxy(child, carer.address, ProxyRelation.CARER, (ProxyScope.DEVICES,))
    api = api_client(FakeNode(chain))
    kid, mum = format_address(child.address), format_address(mother.address)

    listed = ok(api.get(f"/v1/patients/{kid}/proxies"))
    assert listed["patient"] == kid
    proxies = [decode(Proxy, bytes.fromhex(p["encoded"])) for p in listed["proxies"]]
    assert proxies == chain.proxies_of(child.address) and len(proxies) == 2
    shown = {p["proxy"]: p for p in listed["proxies"]}
    assert shown[mum]["scopes"] == ["grant", "read"] and shown[mum]["relation"] == "parent"

    acting = ok(api.get(f"/v1/proxies/{mum}/patients"))
    assert [p["patient"] for p in acting["patients"]] == [kid]
    readers = ok(api.get(f"/v1/patients/{kid}/required-readers"))
    assert readers == {"patient": kid, "readers": [mum]}

    stranger = format_address(AccountKeys.generate().address)
    missing = api.get(f"/v1/patients/{stranger}/proxies")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_registered"
    assert ok(api.get(f"/v1/proxies/{stranger}/patients"))["patients"] == []


def test_http_chain_reads_them_as_a_local_chain_does() -> None:
    chain = make_chain()
    child, mother = (MedchainClient(AccountKeys.generate(), chain) for _ in range(2))
    for person in (child, mother):
        person.register(Role.PATIENT, "")
    add_proxy(child, mother.address, ProxyRelation.LEGAL, (ProxyScope.READ,))
    remote = HttpChain("http://node", transport=SyncASGITransport(create_api(FakeNode(chain))))
    assert remote.proxies_of(child.address) == chain.proxies_of(child.address)
    assert remote.patients_of(mother.address) == chain.patients_of(mother.address)
    assert remote.required_readers(child.address) == (mother.address,)
