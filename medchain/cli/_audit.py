"""The auditor's active verification behind `medchain verify`, as a plain function.

The node is asked only for what it stores; the anchors are read straight from the
verification chain, where the node cannot change them (each is a quorum of the
genesis validators' signatures). One request per question — the node's anchoring
settings, its genesis, its block ids at every anchored height at once — and two
log queries on Ethereum, so a node serving a conflicting chain is caught within a
second, however long the chain.

`connect_contract` is the one place the CLI builds an Ethereum client: tests
replace it with a client on eth-tester."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from eth_utils.address import is_address

from medchain.anchor import (
    FINALIZED,
    Anchor,
    AnchorConflict,
    AnchorError,
    AnchorSettings,
    Finality,
    VerifyReport,
    compare_hashes,
    keeping_recursion_limit,
)
from medchain.client import NodeError, NodeUnreachable
from medchain.types import DecodeError, Genesis, MedchainError, decode

if TYPE_CHECKING:
    from medchain.anchor import AnchorContract

DEFAULT_TIMEOUT_S = 10.0
MAX_HEIGHTS_PER_REQUEST = 10_000
"""What POST /v1/chain/hashes takes at once (one request up to 50,000 blocks of
history at the default checkpoint interval)."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_ALARM = 2


def connect_contract(
    rpc_url: str,
    address: str,
    finality: Finality = FINALIZED,
    *,
    eth_chain_id: int | None = None,
    key_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AnchorContract:
    """An Anchor contract client over HTTP; it loads `key_file` (an eth.key) only to
    send. Tests monkeypatch this function to hand out a client on eth-tester."""
    with keeping_recursion_limit():
        from web3 import HTTPProvider, Web3  # here: importing web3 takes most of a second

    from medchain.anchor import AnchorContract, load_eth_key

    provider = HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
    )
    account = None if key_file is None else load_eth_key(key_file)
    return AnchorContract(
        Web3(provider), address, account, finality=finality, eth_chain_id=eth_chain_id
    )


def contract_for(
    settings: AnchorSettings, home: Path | None = None, *, send: bool = False
) -> AnchorContract:
    """The client a node home's anchor settings name (with its eth.key if `send`)."""
    return connect_contract(
        settings.rpc_url,
        settings.contract,
        settings.finality,
        eth_chain_id=settings.eth_chain_id,
        key_file=settings.key_path(home or Path.cwd()) if send else None,
    )


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


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What `medchain verify` found; `exit_code` is the command's exit status."""

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


def amend(exc: MedchainError, message: str) -> None:
    """Say more in an error on its way up (to the CLI, which prints `message`)."""
    exc.message = message
    exc.args = (message,)


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


def audit_node(
    url: str,
    *,
    eth_url: str | None = None,
    contract: str | None = None,
    finality: Finality | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> AuditResult:
    """Check the node at `url` against the anchors of its chain. The verification
    chain is the node's own (GET /v1/anchoring) unless `eth_url`, `contract` or
    `finality` say otherwise. `transport` replaces the network to the node (tests).
    Raises a MedchainError when the node or the verification chain cannot be read."""
    with keeping_recursion_limit():
        import web3  # noqa: F401  # loading the client is the command's start-up, not the check

    started = time.perf_counter()
    with _node_api(url, timeout_s, transport) as node:
        anchoring = node.get("/v1/anchoring")
        genesis = node.genesis()
        rpc_url, address, rule = _verification_chain(url, anchoring, eth_url, contract, finality)
        eth = connect_contract(rpc_url, address, rule, timeout_s=timeout_s)
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
        served = node.block_ids(heights, anchors)
    validators = tuple(v.public_key for v in genesis.validators)
    report = compare_hashes(served, anchors, validators, chain_id=chain_id)
    top = max(served, default=-1)
    report_json = anchoring.get("report")
    return AuditResult(
        node_url=node.url,
        chain_id=chain_id,
        rpc_url=rpc_url,
        contract=eth.address,
        finality=rule,
        report=report,
        conflicts=tuple(conflicts),
        not_compared=sum(1 for h in heights if h > top),
        node_report=report_json if isinstance(report_json, Mapping) else None,
        node_error=str(anchoring.get("last_error") or ""),
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


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


class _NodeApi:
    """The three reads `audit_node` makes, with errors that name the node."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self._http = http
        self.url = url

    def get(self, path: str) -> dict[str, Any]:
        return self._body(path, self._send("GET", path))

    def genesis(self) -> Genesis:
        body = self.get("/v1/genesis")
        try:
            return decode(Genesis, bytes.fromhex(body["encoded"]))
        except (KeyError, TypeError, ValueError, DecodeError):
            raise _malformed(self.url, "/v1/genesis", "no valid encoded genesis") from None

    def block_ids(
        self, heights: Sequence[int], anchors: Sequence[Anchor]
    ) -> dict[int, tuple[bytes, bytes]]:
        """(block id, state root) the node stores at `heights`; one request per
        10,000 heights."""
        found: dict[int, tuple[bytes, bytes]] = {}
        for i in range(0, len(heights), MAX_HEIGHTS_PER_REQUEST):
            chunk = list(heights[i : i + MAX_HEIGHTS_PER_REQUEST])
            path = "/v1/chain/hashes"
            body = self._body(path, self._send("POST", path, json={"heights": chunk}))
            try:
                found.update(_block_ids(body, anchors))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise _malformed(self.url, path, "block ids that are not hex by height") from None
        return found

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise NodeUnreachable(
                f"the medchain node at {self.url} did not answer {path} in time; check that "
                "it is running and not overloaded, then try again"
            ) from None
        except httpx.TransportError as exc:
            raise NodeUnreachable(
                f"cannot reach the medchain node at {self.url} ({exc or type(exc).__name__}); "
                "check --node (env MEDCHAIN_NODE) and that the node is running"
            ) from None

    def _body(self, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 404 and _error_code(body) in (None, "not_found"):
            hint = "is it a medchain node?" if path == "/v1/genesis" else "it predates anchoring"
            raise NodeError(
                "endpoint_missing",
                f"the node at {self.url} does not serve {path} (HTTP 404): {hint}; check "
                "--node, or upgrade the node",
                404,
            )
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise NodeError(
                "node_refused",
                f"the node at {self.url} answered {path} with HTTP {response.status_code}"
                + (f": {message}" if message else ""),
                response.status_code,
            )
        if not isinstance(body, dict):
            raise _malformed(self.url, path, "no JSON object")
        return body


@contextmanager
def _node_api(
    url: str, timeout_s: float, transport: httpx.BaseTransport | None
) -> Iterator[_NodeApi]:
    try:
        base = httpx.URL(url)
    except httpx.InvalidURL:
        base = None
    if base is None or base.scheme not in ("http", "https") or not base.host:
        raise NodeUnreachable(f"{url!r} is not a node URL; give one like http://127.0.0.1:8600")
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, transport=transport) as http:
        yield _NodeApi(http, url.rstrip("/"))


def _block_ids(
    body: Mapping[str, Any], anchors: Sequence[Anchor]
) -> dict[int, tuple[bytes, bytes]]:
    """Both shapes of the answer: {"blocks": {h: {hash, state_root}}}, or the older
    {"hashes": {h: hash}}. A block id commits to its header's state root, so with
    the older shape an id equal to an anchor's stands for that anchor's root too."""
    if "blocks" in body:
        return {
            int(h): (bytes.fromhex(b["hash"]), bytes.fromhex(b["state_root"]))
            for h, b in body["blocks"].items()
        }
    roots = {(a.height, a.block_hash): a.state_root for a in anchors}
    found = {}
    for h, hex_id in body["hashes"].items():
        block_id = bytes.fromhex(hex_id)
        found[int(h)] = (block_id, roots.get((int(h), block_id), b""))
    return found


def _error_code(body: object) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _malformed(url: str, path: str, what: str) -> NodeError:
    return NodeError(
        "bad_response", f"the node at {url} answered {path} with {what}; is it a medchain node?", 0
    )
