"""The auditor's active verification: a node's served chain checked against the
anchors read straight from the verification chain, where the node cannot change
them (each is a quorum of the genesis validators' signatures).

The node is asked only for what it stores, three questions in all (its anchoring
settings, its genesis, its block ids at every anchored height at once), and Ethereum
for two log queries, so a node serving a conflicting chain is caught within a second,
however long the chain. The node is any `ServedChain` (the SDK's HttpChain is one)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eth_utils.address import is_address

from medchain.anchor._errors import AnchorError
from medchain.anchor._settings import FINALIZED, Finality
from medchain.anchor._types import Anchor, AnchorConflict
from medchain.anchor._verify import VerifyReport, compare_hashes
from medchain.types import Genesis, MedchainError

if TYPE_CHECKING:
    from medchain.anchor._client import AnchorContract

EXIT_OK = 0
EXIT_ALARM = 2


class ServedChain(Protocol):
    """What the audit reads from a node."""

    @property
    def url(self) -> str: ...

    @property
    def genesis(self) -> Genesis: ...

    def anchoring(self) -> Mapping[str, Any]:
        """GET /v1/anchoring: where the node anchors, and its own check."""
        ...

    def block_ids(self, heights: Sequence[int]) -> Mapping[int, tuple[bytes, bytes | None]]:
        """(block id, state root or None if not served) at the heights it holds."""
        ...


ConnectContract = Callable[[str, str, Finality], "AnchorContract"]
"""An anchor contract client for (JSON-RPC URL, contract address, finality)."""


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What an audit found; `exit_code` is what a command reporting it exits with."""

    node_url: str
    chain_id: str
    rpc_url: str
    contract: str
    finality: Finality
    report: VerifyReport
    """The node's served block ids checked against the anchors read from Ethereum."""
    conflicts: tuple[AnchorConflict, ...]
    """Second, different anchors the contract kept as evidence."""
    not_compared: int
    """Anchored heights above the highest one the node holds (it is behind)."""
    node_report: Mapping[str, Any] | None
    """The node's own passive verification, as it serves it (None: it has none)."""
    node_error: str
    """The node's last anchoring error, if any."""
    elapsed_ms: float

    @property
    def alarms(self) -> tuple[str, ...]:
        """Why this is an alarm, for people; empty when everything anchored checks out."""
        found = []
        mismatch = self.report.first_mismatch
        if mismatch is not None:
            found.append(
                f"the node's block at height {mismatch.height} contradicts a final anchor "
                f"({mismatch.what})"
            )
        if self.report.invalid_anchors:
            heights = ", ".join(map(str, self.report.invalid_anchors))
            found.append(f"anchors not signed by a quorum of the validators at {heights}")
        if self.conflicts:
            heights = ", ".join(str(c.height) for c in self.conflicts)
            found.append(f"the contract recorded conflicting anchors at {heights}")
        own = self.node_report.get("first_mismatch") if self.node_report else None
        if isinstance(own, Mapping):
            found.append(
                f"the node's own check reports a mismatch at height {own.get('height')} "
                f"({own.get('what')})"
            )
        return tuple(found)

    @property
    def exit_code(self) -> int:
        return EXIT_ALARM if self.alarms else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.alarms,
            "exit_code": self.exit_code,
            "alarms": list(self.alarms),
            "node": self.node_url,
            "chain_id": self.chain_id,
            "verification_chain": {
                "rpc_url": self.rpc_url,
                "contract": self.contract,
                "finality": self.finality,
            },
            "report": self.report.to_json(),
            "not_compared": self.not_compared,
            "conflicts": [
                {
                    "height": c.height,
                    "anchored": anchor_json(c.anchored),
                    "conflicting": anchor_json(c.conflicting),
                }
                for c in self.conflicts
            ],
            "node_report": None if self.node_report is None else dict(self.node_report),
            "node_error": self.node_error,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def anchor_json(anchor: Anchor) -> dict[str, Any]:
    return {
        "height": anchor.height,
        "block_hash": anchor.block_hash.hex(),
        "state_root": anchor.state_root.hex(),
        "submitter": anchor.submitter,
        "eth_block": anchor.eth_block,
        "eth_tx": anchor.eth_tx.hex(),
        "final": anchor.final,
    }


def amend(exc: MedchainError, message: str) -> None:
    """Say more in an error on its way up (to the CLI, which prints `message`)."""
    exc.message = message
    exc.args = (message,)


def parse_finality(text: str) -> Finality:
    """`finalized` or a number of confirmations (>= 1)."""
    value = text.strip().lower()
    if value == FINALIZED:
        return FINALIZED
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise MedchainError(
        f"finality {text!r} is neither 'finalized' nor a number of confirmations >= 1"
    )


def audit_chain(
    node: ServedChain,
    connect: ConnectContract,
    *,
    eth_url: str | None = None,
    contract: str | None = None,
    finality: Finality | None = None,
) -> AuditResult:
    """Check `node` against the anchors of its chain. The verification chain is the
    node's own (its anchoring settings) unless `eth_url`, `contract` or `finality` say
    otherwise. Raises a MedchainError when the node or Ethereum cannot be read."""
    started = time.perf_counter()
    anchoring = node.anchoring()
    genesis = node.genesis
    rpc_url, address, rule = _verification_chain(node.url, anchoring, eth_url, contract, finality)
    eth = connect(rpc_url, address, rule)
    chain_id = genesis.chain_id
    try:
        anchors = eth.anchors(chain_id)
        conflicts = eth.conflicts(chain_id)
        if not anchors:
            eth.latest_height(chain_id)  # no contract at the address: an error, not "ok"
    except AnchorError as exc:
        amend(
            exc,
            f"{exc.message} (the anchors of {chain_id!r} are read from {rpc_url}; --eth-url, "
            "--contract and --finality override what the node says)",
        )
        raise
    heights = sorted({a.height for a in anchors})
    served = with_anchored_roots(node.block_ids(heights), anchors)
    validators = tuple(v.public_key for v in genesis.validators)
    top = max(served, default=-1)
    report_json = anchoring.get("report")
    return AuditResult(
        node_url=node.url,
        chain_id=chain_id,
        rpc_url=rpc_url,
        contract=eth.address,
        finality=rule,
        report=compare_hashes(served, anchors, validators, chain_id=chain_id),
        conflicts=tuple(conflicts),
        not_compared=sum(1 for h in heights if h > top),
        node_report=report_json if isinstance(report_json, Mapping) else None,
        node_error=str(anchoring.get("last_error") or ""),
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def with_anchored_roots(
    served: Mapping[int, tuple[bytes, bytes | None]], anchors: Sequence[Anchor]
) -> dict[int, tuple[bytes, bytes]]:
    """Fill the state roots a node of an older release did not serve: a block id
    commits to its header's state root, so an id equal to an anchor's stands for that
    anchor's root; any other id is compared as it is, with no root."""
    roots = {(a.height, a.block_hash): a.state_root for a in anchors}
    return {
        h: (block_id, root if root is not None else roots.get((h, block_id), b""))
        for h, (block_id, root) in served.items()
    }


def _verification_chain(
    url: str,
    anchoring: Mapping[str, Any],
    eth_url: str | None,
    contract: str | None,
    finality: Finality | None,
) -> tuple[str, str, Finality]:
    """Where to read the anchors: the options, else what the node anchors on."""
    configured = bool(anchoring.get("configured"))
    if not configured and (eth_url is None or contract is None):
        missing = " and ".join(
            name for name, value in (("--eth-url", eth_url), ("--contract", contract)) if not value
        )
        raise MedchainError(
            f"the node at {url} does not anchor its chain (no anchor section in its "
            f"config.json), so it cannot say where its anchors are; pass {missing} of the "
            "anchor contract its validators anchor to"
        )
    rpc_url = eth_url or str(anchoring.get("rpc_url", ""))
    address = contract or str(anchoring.get("contract", ""))
    if not rpc_url.startswith(("http://", "https://")):
        raise MedchainError(f"--eth-url {rpc_url!r} is not an http:// or https:// URL")
    if not is_address(address):
        raise MedchainError(
            f"--contract {address!r} is not an Ethereum address (0x and 40 hex digits)"
        )
    if finality is None:
        served = str(anchoring.get("finality") or FINALIZED)
        finality = parse_finality(served) if configured else FINALIZED
    return rpc_url, address, finality
