"""What the operator's explorer reads from a node, as plain values for the templates:
no key, only the node's public reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from medchain.app import Identity, Role, StakeAccount
from medchain.crypto import address_from_public_key, format_address
from medchain.types import Block, Genesis, NodeStatus, Receipt, tx_id
from medchain.web._explorer_fleet import FleetChain
from medchain.web._txs import TxView, tx_view

LATEST_BLOCKS = 20
ROLE_PAGE = 50


class ExplorerChain(FleetChain, Protocol):
    """The reads the explorer makes (a node's HttpChain has them)."""

    @property
    def genesis(self) -> Genesis: ...

    def status(self) -> NodeStatus: ...

    def latest_block(self) -> Block: ...

    def block_at(self, height: int) -> Block | None: ...

    def receipt(self, tx_hash: bytes) -> Receipt | None: ...

    def anchoring(self) -> dict[str, Any]: ...

    def role_count(self, role: Role) -> int: ...

    def role_member(self, role: Role, index: int) -> bytes | None: ...

    def identity(self, address: bytes) -> Identity | None: ...

    def stake(self, address: bytes) -> StakeAccount: ...

    def mempool(self, limit: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BlockSummary:
    height: int
    hash: str
    time: str
    proposer: str
    tx_count: int
    methods: str

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class BlockPage:
    summary: BlockSummary
    prev_hash: str
    state_root: str
    signatures: int
    txs: tuple[TxView, ...]


def show_time(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def summary(block: Block) -> BlockSummary:
    methods = sorted({tx.method for tx in block.txs})
    return BlockSummary(
        height=block.height,
        hash=block.certificate.block_hash.hex(),
        time=show_time(block.header.time_ms),
        proposer=format_address(block.header.proposer),
        tx_count=len(block.txs),
        methods=", ".join(methods) or "—",
    )


def latest_blocks(chain: ExplorerChain, count: int = LATEST_BLOCKS) -> list[BlockSummary]:
    top = chain.latest_block()
    found = [summary(top)]
    for height in range(top.height - 1, max(top.height - count, -1), -1):
        block = chain.block_at(height)
        if block is not None:
            found.append(summary(block))
    return found


def block_page(chain: ExplorerChain, height: int) -> BlockPage | None:
    block = chain.block_at(height)
    if block is None:
        return None
    txs = tuple(tx_view(tx, chain.receipt(tx_id(tx))) for tx in block.txs)
    return BlockPage(
        summary=summary(block),
        prev_hash=block.header.prev_hash.hex(),
        state_root=block.header.state_root.hex(),
        signatures=len(block.certificate.signatures),
        txs=txs,
    )


@dataclass(frozen=True)
class ValidatorRow:
    name: str
    address: str
    power: int
    bonded: int
    primary: bool


@dataclass(frozen=True)
class AnchorView:
    """The node's anchors on Ethereum and its latest check of its chain against them."""

    configured: bool
    contract: str = ""
    anchored_height: int = 0
    final_height: int = 0
    state: str = ""
    """The verification state in words."""
    alarm: str = ""
    """A final anchor (or the chain's own links) disagrees with the chain."""
    warning: str = ""
    """A pending anchor disagrees (an alarm once final), or the last anchoring error."""


def _mismatch(found: Any) -> str:
    if not isinstance(found, dict):
        return ""
    detail = f": {found['detail']}" if found.get("detail") else ""
    return f"{found.get('what', 'mismatch')} at height {found.get('height')}{detail}"


def _verification(report: Any) -> str:
    if not isinstance(report, dict):
        return "not checked yet"
    verified = int(report.get("last_verified_height", -1))
    state = f"verified up to height {verified}" if verified >= 0 else "nothing verified yet"
    invalid = report.get("invalid_anchors") or []
    if invalid:
        state += f"; {len(invalid)} invalid anchors ignored"
    return state + f"; {report.get('anchors_pending', 0)} pending"


def anchor_view(anchoring: dict[str, Any]) -> AnchorView:
    """`anchoring` as GET /v1/anchoring serves it, for the explorer's anchors section."""
    if not anchoring.get("configured"):
        return AnchorView(configured=False)
    report = anchoring.get("report")
    alarm = _mismatch(report.get("first_mismatch")) if isinstance(report, dict) else ""
    pending = _mismatch(report.get("pending_mismatch")) if isinstance(report, dict) else ""
    error = str(anchoring.get("last_error") or "")
    return AnchorView(
        configured=True,
        contract=str(anchoring.get("contract", "")),
        anchored_height=int(anchoring.get("anchored_height", 0)),
        final_height=int(anchoring.get("final_height", 0)),
        state=_verification(report),
        alarm=alarm,
        warning=f"a pending anchor disagrees: {pending}" if pending else error,
    )


@dataclass(frozen=True)
class Overview:
    status: NodeStatus
    validators: tuple[ValidatorRow, ...]
    role_counts: tuple[tuple[str, int], ...]
    anchors: AnchorView


def overview(chain: ExplorerChain) -> Overview:
    status = chain.status()
    rows = tuple(
        ValidatorRow(
            name=v.name,
            address=format_address(address_from_public_key(v.public_key)),
            power=v.power,
            bonded=chain.stake(address_from_public_key(v.public_key)).bonded,
            primary=v.public_key == status.primary,
        )
        for v in chain.genesis.validators
    )
    # devices are not accounts: they have their own registry, not the role index
    counts = tuple((r.value, chain.role_count(r)) for r in Role if r is not Role.DEVICE)
    return Overview(status, rows, counts, anchor_view(chain.anchoring()))


@dataclass(frozen=True)
class AccountRow:
    name: str
    address: str
    registered_height: int


def accounts_with(
    chain: ExplorerChain, role: Role, start: int, count: int = ROLE_PAGE
) -> tuple[int, list[AccountRow]]:
    """How many accounts hold `role`, and the page of them from `start`."""
    total = chain.role_count(role)
    rows = []
    for index in range(start, min(start + count, total)):
        address = chain.role_member(role, index)
        identity = None if address is None else chain.identity(address)
        if identity is not None:
            rows.append(
                AccountRow(identity.name, format_address(address), identity.registered_height)
            )
    return total, rows
