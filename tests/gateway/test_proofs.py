"""Proving a reading against the chain through a gateway (medchain.gateway._proofs)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from medchain.crypto import AccountKeys
from medchain.gateway import (
    FleetRun,
    GatewayUnavailable,
    check_reading_proof,
    device_proof_auths,
    proof_auth,
)
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import create_gateway_app
from medchain.gateway._service import GatewayService
from tests.api.harness import SyncASGITransport
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)


def _gateway(world: World) -> tuple[GatewayService, httpx.Client]:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    transport = SyncASGITransport(create_gateway_app(service, background=False, threads=False))
    return service, httpx.Client(transport=transport, base_url="http://gw")


def test_check_reading(world: World) -> None:  # noqa: F811
    service, http = _gateway(world)
    sim = world.device()
    device = proof_auth(sim.keys, world.chain.chain_id)
    rid = service.submit(sim.next_reading()).reading_id
    with pytest.raises(GatewayUnavailable, match="not committed yet"):
        check_reading_proof(http, world.chain, rid, device)
    with pytest.raises(GatewayUnavailable, match="knows no reading"):
        check_reading_proof(http, world.chain, b"\x01" * 32, device)
    for _ in range(3):
        service.submit(sim.next_reading())
    service.flush()
    with pytest.raises(GatewayUnavailable, match=r"refused to tell.*signed read"):
        check_reading_proof(http, world.chain, rid)
    check = check_reading_proof(http, world.chain, rid, device)
    assert check.verified and check.proof.tree_size == 4 and len(check.proof.path) == 2
    assert check.to_json()["chain_root"] == check.proof.root.hex()

    class OtherRoot:
        """A chain whose batch has another root (the gateway lied, or another chain)."""

        def batch(self, batch_id: bytes) -> Any:
            found = world.chain.batch(batch_id)
            assert found is not None
            return replace(found, root=b"\x02" * 32)

    patient = proof_auth(world.patient.keys, world.chain.chain_id)
    lied = check_reading_proof(http, OtherRoot(), rid, patient)
    assert not lied.verified and "differs" in lied.reason
    wrong_path = replace(check, proof=replace(check.proof, index=check.proof.index ^ 1))
    assert not wrong_path.verified and "audit path" in wrong_path.reason


def test_the_device_proves_each_of_its_readings_and_a_stranger_none(world: World) -> None:  # noqa: F811
    service, http = _gateway(world)
    sims = [world.device() for _ in range(2)]
    run = FleetRun()
    for sim in sims:
        for _ in range(2):
            run._accept(sim.keys.address, service.submit(sim.next_reading()).reading_id)
    service.flush()
    signers = device_proof_auths(run, sims, world.chain.chain_id)
    assert len(signers) == 4
    for rid, auth in signers.items():
        assert check_reading_proof(http, world.chain, rid, auth).verified
    stranger = proof_auth(AccountKeys.generate(), world.chain.chain_id)
    with pytest.raises(GatewayUnavailable, match="may not ask about readings"):
        check_reading_proof(http, world.chain, next(iter(signers)), stranger)
