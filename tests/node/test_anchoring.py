"""The node's anchoring loop, one pass at a time, against a fake anchor contract:
which anchors it trusts, whose turn it is to send, what it sends, and the alarm."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from medchain.anchor import (
    AlreadyAnchored,
    Anchor,
    AnchorConflict,
    AnchorSettings,
    CheckpointCertificate,
)
from medchain.consensus import Checkpoint, CheckpointCertified, sign
from medchain.node import Anchoring
from medchain.types import block_hash
from tests.anchor.test_verify import CHAIN, EVERY, Chain, make_anchor, make_chain

CONTRACT = "0x" + "ab" * 20


class FakeContract:
    """The anchor contract as the loop sees it: anchors by height, and what was sent."""

    def __init__(self) -> None:
        self.anchored: dict[int, Anchor] = {}
        self.sent: list[CheckpointCertificate] = []
        self.race = False

    def anchors(self, chain_id: str, from_height: int = 0, from_block: int = 0) -> list[Anchor]:
        return [a for h, a in sorted(self.anchored.items()) if h >= from_height]

    def conflicts(self, chain_id: str) -> list[AnchorConflict]:
        return []

    def submit(self, cert: CheckpointCertificate) -> bytes:
        if self.race:
            raise AlreadyAnchored("already anchored", reason="already anchored")
        self.sent.append(cert)
        return b"\x01" * 32


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    return make_chain(tmp_path, 3 * EVERY)


def loop(chain: Chain, me: int = 0, turn_ms: int = 60_000) -> tuple[Anchoring, FakeContract]:
    settings = AnchorSettings(
        rpc_url="http://127.0.0.1:1", eth_chain_id=1337, contract=CONTRACT, finality=1
    )
    anchoring = Anchoring(
        settings,
        chain.home,
        chain.genesis,
        chain.path,
        chain.keys,
        chain.validators[me].public_key,
        CollectorRegistry(),
        turn_ms=turn_ms,
    )
    fake = FakeContract()
    anchoring._contract = fake  # type: ignore[assignment]
    return anchoring, fake


def certified(chain: Chain, height: int) -> CheckpointCertified:
    block = chain.store.block_at(height)
    assert block is not None
    checkpoints = tuple(
        sign(
            CHAIN,
            Checkpoint(height, block_hash(block.header), block.header.state_root, k.public_key),
            k,
        )
        for k in sorted(chain.validators[:3], key=lambda k: k.public_key)
    )
    return CheckpointCertified(checkpoints[0], checkpoints)


def test_only_final_anchors_signed_by_a_quorum_can_make_the_node_refuse_a_block(
    chain: Chain,
) -> None:
    anchoring, fake = loop(chain)
    good, pending, forged = chain.anchors()[:3]
    fake.anchored = {
        good.height: good,
        pending.height: make_anchor(
            chain.validators[:3],
            pending.height,
            pending.block_hash,
            pending.state_root,
            final=False,
        ),
        forged.height: make_anchor(
            chain.validators[:2], forged.height, b"\x09" * 32, forged.state_root
        ),  # two signers: no quorum
    }
    anchoring._pass()
    assert anchoring.final_anchor(good.height) == good.block_hash
    assert anchoring.final_anchor(pending.height) is None
    assert anchoring.final_anchor(forged.height) is None
    status = anchoring.status()
    assert (status.anchored_height, status.final_height) == (forged.height, good.height)
    assert status.report is not None and status.report.invalid_anchors == (forged.height,)


def test_validators_send_in_turn_and_only_the_newest_checkpoint(chain: Chain) -> None:
    height = 2 * EVERY
    turn = (height // EVERY) % 4
    sender, fake = loop(chain, me=turn)
    other, other_fake = loop(chain, me=(turn + 1) % 4)
    for anchoring in (sender, other):
        anchoring.on_certified(certified(chain, EVERY))
        anchoring.on_certified(certified(chain, height))
        anchoring.on_certified(certified(chain, EVERY))  # older: ignored
    sender._pass()
    other._pass()
    assert [c.height for c in fake.sent] == [height]  # its turn, the newest only
    assert other_fake.sent == []  # waits a turn before stepping in
    sent = fake.sent[0]
    assert len(sent.signatures) == 3 and sent.chain_id == CHAIN
    other_fake.anchored[height] = chain.anchors()[1]  # the first sender's anchor lands
    other._pass()
    assert other_fake.sent == [] and other._pending is None  # nothing left to send


def test_the_next_validator_steps_in_when_the_one_whose_turn_it_is_is_silent(
    chain: Chain,
) -> None:
    height = 2 * EVERY
    turn = (height // EVERY) % 4
    stand_in, fake = loop(chain, me=(turn + 1) % 4, turn_ms=0)
    stand_in.on_certified(certified(chain, height))
    stand_in._pass()
    assert [c.height for c in fake.sent] == [height]


def test_a_lost_race_is_not_an_error(chain: Chain) -> None:
    height = EVERY
    anchoring, fake = loop(chain, me=(height // EVERY) % 4)
    fake.race = True
    anchoring.on_certified(certified(chain, height))
    anchoring._pass()
    assert anchoring._pending is None and anchoring.status().anchors_sent == 0


def test_observers_and_disabled_nodes_never_send(chain: Chain) -> None:
    anchoring, fake = loop(chain)
    anchoring.sender = False
    anchoring.on_certified(certified(chain, EVERY))
    anchoring._pass()
    assert fake.sent == [] and anchoring._pending is None


def test_a_stored_block_contradicting_a_final_anchor_raises_the_alarm(
    chain: Chain, caplog: pytest.LogCaptureFixture
) -> None:
    anchoring, fake = loop(chain)
    honest = chain.anchors()
    lie = honest[1]
    fake.anchored = {a.height: a for a in honest}
    fake.anchored[lie.height] = make_anchor(
        chain.validators[:3], lie.height, b"\x07" * 32, lie.state_root
    )
    with caplog.at_level(logging.ERROR, logger="medchain.anchoring"):
        anchoring._pass()
    report = anchoring.status().report
    assert report is not None and report.first_mismatch is not None
    assert (report.first_mismatch.height, report.first_mismatch.what) == (lie.height, "block_hash")
    assert anchoring.metrics.mismatch._value.get() == 1
    assert "ALARM" in caplog.text and "medchain recover" in caplog.text
