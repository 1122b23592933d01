"""`audit_chain` on a node and a verification chain in memory: which anchors it reads
where, how it compares what the node serves, and the errors that say what to pass.
(End to end, through the API and eth-tester: tests/cli/test_anchor.py.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from medchain.anchor import (
    EXIT_ALARM,
    EXIT_OK,
    FINALIZED,
    Anchor,
    AnchorConflict,
    AnchorError,
    Finality,
    audit_chain,
    parse_finality,
)
from medchain.anchor._audit import with_anchored_roots
from medchain.crypto import AccountKeys
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator, MedchainError
from tests.anchor.test_verify import CHAIN, T0, make_anchor

VALIDATORS = [AccountKeys.generate() for _ in range(4)]
GENESIS = Genesis(
    CHAIN,
    T0,
    ChainParams(checkpoint_interval=5),
    (Allocation(VALIDATORS[0].address, 10**9),),
    tuple(GenesisValidator(k.public_key, f"v{i}") for i, k in enumerate(VALIDATORS)),
)
CONTRACT = "0x" + "ab" * 20
ANCHORING = {
    "configured": True,
    "rpc_url": "http://eth:8545",
    "contract": CONTRACT,
    "finality": "3",
}


def block(height: int) -> tuple[bytes, bytes]:
    return bytes([height]) * 32, bytes([height + 100]) * 32


def anchor(height: int) -> Anchor:
    return make_anchor(VALIDATORS[:3], height, *block(height))


@dataclass
class Node:
    """A node serving blocks 0..`top` (older releases: no roots)."""

    top: int
    anchoring_answer: Mapping[str, Any] = field(default_factory=lambda: dict(ANCHORING))
    roots: bool = True
    url: str = "http://node"
    genesis: Genesis = GENESIS
    asked: list[Sequence[int]] = field(default_factory=list)

    def anchoring(self) -> Mapping[str, Any]:
        return self.anchoring_answer

    def block_ids(self, heights: Sequence[int]) -> dict[int, tuple[bytes, bytes | None]]:
        self.asked.append(heights)
        return {
            h: (block(h)[0], block(h)[1] if self.roots else None) for h in heights if h <= self.top
        }


@dataclass
class Contract:
    """The anchor contract as the audit reads it."""

    anchors_kept: list[Anchor]
    conflicts_kept: list[AnchorConflict] = field(default_factory=list)
    address: str = CONTRACT
    failure: AnchorError | None = None

    def anchors(self, chain_id: str) -> list[Anchor]:
        if self.failure is not None:
            raise self.failure
        return [a for a in self.anchors_kept if a.chain_id == chain_id]

    def conflicts(self, chain_id: str) -> list[AnchorConflict]:
        return self.conflicts_kept

    def latest_height(self, chain_id: str) -> int:
        return -1


class Connections:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.made: list[tuple[str, str, Finality]] = []

    def __call__(self, rpc_url: str, address: str, finality: Finality) -> Any:
        self.made.append((rpc_url, address, finality))
        return self.contract


def test_the_node_is_checked_where_it_says_it_anchors() -> None:
    node, connect = Node(top=30), Connections(Contract([anchor(h) for h in (5, 10, 15)]))
    result = audit_chain(node, connect)
    assert connect.made == [("http://eth:8545", CONTRACT, 3)]
    assert node.asked == [[5, 10, 15]]  # one question for every anchored height
    assert result.exit_code == EXIT_OK and result.alarms == ()
    assert (result.report.anchors_total, result.report.last_verified_height) == (3, 15)
    assert (result.chain_id, result.finality, result.not_compared) == (CHAIN, 3, 0)


def test_a_block_other_than_the_anchored_one_is_the_alarm() -> None:
    other = make_anchor(VALIDATORS[:3], 10, b"\xee" * 32, block(10)[1])
    result = audit_chain(Node(top=30), Connections(Contract([anchor(5), other])))
    assert result.exit_code == EXIT_ALARM
    mismatch = result.report.first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (10, "block_hash")
    assert "height 10 contradicts a final anchor" in result.alarms[0]
    assert result.to_json()["ok"] is False


def test_anchors_above_the_nodes_top_are_not_compared() -> None:
    result = audit_chain(Node(top=12), Connections(Contract([anchor(h) for h in (5, 10, 15)])))
    assert result.exit_code == EXIT_OK and result.not_compared == 1


def test_options_override_the_nodes_settings() -> None:
    connect = Connections(Contract([]))
    elsewhere = "0x" + "cd" * 20
    audit_chain(
        Node(top=5), connect, eth_url="https://other:8545", contract=elsewhere, finality=FINALIZED
    )
    assert connect.made == [("https://other:8545", elsewhere, FINALIZED)]


def test_a_node_that_does_not_anchor_needs_both_options() -> None:
    silent = Node(top=5, anchoring_answer={"configured": False})
    connect = Connections(Contract([]))
    with pytest.raises(MedchainError, match="pass --eth-url and --contract"):
        audit_chain(silent, connect)
    with pytest.raises(MedchainError, match="pass --contract"):
        audit_chain(silent, connect, eth_url="http://eth:8545")
    result = audit_chain(silent, connect, eth_url="http://eth:8545", contract=CONTRACT)
    assert result.finality == FINALIZED and connect.made == [
        ("http://eth:8545", CONTRACT, FINALIZED)
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eth_url": "eth:8545"}, "not an http:// or https:// URL"),
        ({"contract": "0x1234"}, "not an Ethereum address"),
    ],
)
def test_a_wrong_option_is_named(options: dict[str, str], message: str) -> None:
    connect = Connections(Contract([]))
    with pytest.raises(MedchainError, match=message):
        audit_chain(Node(top=5), connect, **options)  # type: ignore[arg-type]
    assert connect.made == []


def test_an_unreadable_verification_chain_says_where_it_was_read() -> None:
    failing = Contract([], failure=AnchorError("no answer"))
    with pytest.raises(
        AnchorError, match=r"no answer \(the anchors of .* are read from http://eth"
    ):
        audit_chain(Node(top=5), Connections(failing))


def test_roots_a_node_did_not_serve_come_from_the_matching_anchors() -> None:
    served: dict[int, tuple[bytes, bytes | None]] = {
        5: (block(5)[0], None),  # the anchored id: its root is the anchor's
        10: (b"\xee" * 32, None),  # another id: no root to stand for it
        15: block(15),  # served with its root: kept
    }
    filled = with_anchored_roots(served, [anchor(5), anchor(10)])
    assert filled == {5: block(5), 10: (b"\xee" * 32, b""), 15: block(15)}
    older = Node(top=15, roots=False)
    result = audit_chain(older, Connections(Contract([anchor(5), anchor(10)])))
    assert result.exit_code == EXIT_OK and result.report.last_verified_height == 10


def test_parse_finality() -> None:
    assert parse_finality(" Finalized ") == FINALIZED
    assert parse_finality("12") == 12
    for wrong in ("0", "-1", "soon", ""):
        with pytest.raises(MedchainError, match="neither 'finalized' nor a number"):
            parse_finality(wrong)
