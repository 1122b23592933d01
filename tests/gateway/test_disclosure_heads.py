"""The gateway's commitments of its disclosure log's head (the node's rule, its own
account): only when the log has written entries beyond what the chain holds, only
while the chain lists it as an active gateway, at most once per interval, and from
the loop that commits its batches; on a LocalChain, in process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from medchain.app import head_commits, latest_head
from medchain.gateway._disclosure_heads import GatewayHeads
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import flush_batches, make_call
from medchain.gateway._service import GatewayService
from medchain.node import DISCLOSURES_FILE, SqliteDisclosureLog
from medchain.types import Disclosure, DisclosureKind, ReadBasis
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)

URL = "https://edge.example:8700"


class _Gateway:
    def __init__(self, world: World, tmp_path: Path) -> None:  # noqa: F811
        self.world = world
        self.log = SqliteDisclosureLog(tmp_path / DISCLOSURES_FILE, world.gateway_keys.address)
        self.service: GatewayService = world.service(ReadingIndex(":memory:"), disclosures=self.log)
        self.heads = GatewayHeads(self.log, self.service.client, URL, make_call(False), 10.0)

    def reads(self, count: int) -> None:
        for n in range(count):
            self.log.append(
                Disclosure(
                    n,
                    self.world.patient.address,
                    self.world.patient.address,
                    DisclosureKind.VITALS,
                    "PATRQT",
                    ReadBasis.OWNER,
                )
            )
        assert self.log.flush(30)

    def committed(self) -> list[tuple[int, bytes, str]]:
        state = self.world.chain.ledger.state
        found = head_commits(state, self.world.gateway_keys.address)
        return [(c.seq, c.head, c.api_url) for c in found]


def test_the_gateway_commits_its_written_head_when_it_grew(world: World, tmp_path: Path) -> None:  # noqa: F811
    gateway = _Gateway(world, tmp_path)
    assert not asyncio.run(gateway.heads.commit_once())  # an empty log
    gateway.reads(3)
    assert asyncio.run(gateway.heads.commit_once())
    assert gateway.committed() == [(*gateway.log.durable, URL)]
    assert not asyncio.run(gateway.heads.commit_once())  # nothing new since
    gateway.reads(2)
    assert asyncio.run(gateway.heads.commit_once())
    assert [seq for seq, _, _ in gateway.committed()] == [3, 5]
    commits = [(seq, head) for seq, head, _ in gateway.committed()]
    assert gateway.log.disagreement(commits) == 0
    assert world.chain.disclosure_head(world.gateway_keys.address) == latest_head(
        world.chain.ledger.state, world.gateway_keys.address
    )
    gateway.log.close()


def test_a_revoked_gateway_sends_nothing(world: World, tmp_path: Path) -> None:  # noqa: F811
    gateway = _Gateway(world, tmp_path)
    gateway.reads(1)
    assert asyncio.run(gateway.heads.commit_once())
    world.hospital.revoke_gateway(world.gateway_keys.address)
    nonce = world.chain.account(world.gateway_keys.address).nonce
    gateway.reads(1)
    assert not asyncio.run(gateway.heads.commit_once())
    assert world.chain.account(world.gateway_keys.address).nonce == nonce  # no fee spent
    assert [seq for seq, _, _ in gateway.committed()] == [1]
    gateway.log.close()


def test_at_most_once_per_interval_and_between_batches(world: World, tmp_path: Path) -> None:  # noqa: F811
    gateway = _Gateway(world, tmp_path)
    gateway.reads(1)
    assert asyncio.run(gateway.heads.tick(100.0))
    gateway.reads(1)
    assert not asyncio.run(gateway.heads.tick(105.0))  # within the 10 s interval
    assert asyncio.run(gateway.heads.tick(110.0))
    sim = world.device()
    gateway.heads.interval_s = 0.0
    gateway.reads(1)
    gateway.service.submit(sim.next_reading())
    # the batch loop commits the head due after its batch, from the same account
    ids = asyncio.run(flush_batches(gateway.service, make_call(False), gateway.heads))
    assert len(ids) == 1 and world.chain.batch(ids[0]) is not None
    assert [seq for seq, _, _ in gateway.committed()] == [1, 2, 3]
    gateway.heads.interval_s = 3_600.0
    gateway.reads(1)
    assert asyncio.run(gateway.heads.tick(time.monotonic()))
    gateway.reads(1)
    gateway.service.submit(sim.next_reading())
    ids = asyncio.run(flush_batches(gateway.service, make_call(False), gateway.heads))
    assert len(ids) == 1  # the batch goes; the head waits for its interval
    assert [seq for seq, _, _ in gateway.committed()] == [1, 2, 3, 4]
    gateway.log.close()
