"""A chain with something of everything on it, and the API over it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from medchain.app import Role
from medchain.client import MedchainClient
from medchain.client._anon import anon_submit, open_scope
from medchain.crypto import AccountKeys, SearchToken
from medchain.node import LocalChain
from tests.api.harness import FakeNode, api_client, clinician, institution, make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCOPE = "cardio/2026"
"""A scope name with a slash: paths must carry it."""


@dataclass
class World:
    chain: LocalChain
    node: FakeNode
    api: httpx.Client
    validator: MedchainClient
    patient: MedchainClient
    doctor: MedchainClient
    lab: MedchainClient
    record_id: bytes
    token: SearchToken


def _person(chain: LocalChain, role: Role, name: str) -> MedchainClient:
    client = MedchainClient(AccountKeys.generate(), chain)
    client.register(role, name)
    return client


@pytest.fixture
def world() -> World:
    chain = make_chain()
    validator = MedchainClient(chain.validator, chain)
    patient = _person(chain, Role.PATIENT, "Jane Roe")
    doctor = clinician(chain, "Dr. Who")
    lab = institution(chain)
    others = [_person(chain, Role.PATIENT, f"P{i}") for i in range(3)]
    condition = json.loads((EXAMPLES / "condition.json").read_text())
    record_id = doctor.put_record(patient.address, condition, keywords=["diabetes"])
    patient.research_grant(record_id, lab.address)
    open_scope(lab, SCOPE, Role.PATIENT, 3)
    anon_submit(others[0], SCOPE, condition, ring_size=3)
    validator.stake(5_000)
    validator.vote(validator.address, 3_000)

    tokens: list[SearchToken] = []
    search = chain.search

    def recording(owner: bytes, token: SearchToken) -> list[list[bytes]]:
        tokens.append(token)
        return search(owner, token)

    chain.search = recording  # type: ignore[method-assign]
    assert doctor.search("diabetes").record_ids == (record_id,)
    chain.search = search  # type: ignore[method-assign]

    node = FakeNode(chain)
    return World(
        chain, node, api_client(node), validator, patient, doctor, lab, record_id, tokens[-1]
    )
