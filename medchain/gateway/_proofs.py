"""Proving a reading against the chain, trusting the gateway for nothing: the gateway
gives the reading's Merkle proof, the chain the root of the batch it was committed in.
What the patient, one of their vitals readers (`medchain reading prove`), a simulated
device (a simulation's `--prove`) or any SDK user checks. The gateway answers only a
read signed by the reading's device, its patient or one allowed to read their vitals
(`proof_auth` signs one)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from medchain.app import BATCH_ID_SIZE, Batch, PurposeOfUse
from medchain.client import ReadAuth
from medchain.crypto import AccountKeys
from medchain.gateway._batch import ReadingProof, verify_proof
from medchain.gateway._fleet_stream import FleetRun, ProgressBar
from medchain.gateway._remote import GatewayUnavailable
from medchain.gateway._simulate import SimulatedDevice
from medchain.types import MedchainError, fixed_hex


@dataclass(frozen=True)
class ProofCheck:
    """What proving a reading found: the gateway's proof and the root the chain holds."""

    reading_id: bytes
    batch_id: bytes
    proof: ReadingProof
    chain_root: bytes | None
    """None when the chain holds no such batch."""

    @property
    def verified(self) -> bool:
        return self.chain_root is not None and verify_proof(self.proof, self.chain_root)

    @property
    def reason(self) -> str:
        if self.chain_root is None:
            return f"the chain holds no batch {self.batch_id.hex()}"
        if self.proof.root != self.chain_root:
            return "the gateway's root differs from the batch root on chain"
        if not self.verified:
            return "the audit path does not lead from the reading to the root"
        return "the reading is in the batch committed on chain"

    def to_json(self) -> dict[str, Any]:
        return {
            "reading": self.reading_id.hex(),
            "batch": self.batch_id.hex(),
            "index": self.proof.index,
            "tree_size": self.proof.tree_size,
            "path": [h.hex() for h in self.proof.path],
            "proof_root": self.proof.root.hex(),
            "chain_root": None if self.chain_root is None else self.chain_root.hex(),
            "verified": self.verified,
            "reason": self.reason,
        }


def parse_reading_id(text: str) -> bytes:
    """A reading id as the gateway answers it (64 hex digits)."""
    raw = fixed_hex(text, 32)
    if raw is None:
        raise MedchainError(f"{text!r} is not a reading id (64 hex digits, as the gateway answers)")
    return raw


def _hex(body: dict[str, Any], key: str, size: int) -> bytes:
    raw = bytes.fromhex(body[key])
    if len(raw) != size:
        raise ValueError(f"{key} is not {size} bytes")
    return raw


class BatchSource(Protocol):
    """Where committed batches are read: a ChainBackend, or a cache in front of one."""

    def batch(self, batch_id: bytes) -> Batch | None: ...


class CachedBatches:
    """The chain's batches, each read once: a batch holds many readings, so proving a
    fleet's readings asks the chain once a batch, not once a reading."""

    def __init__(self, chain: BatchSource) -> None:
        self.chain = chain
        self.seen: dict[bytes, Batch | None] = {}

    def batch(self, batch_id: bytes) -> Batch | None:
        if batch_id not in self.seen:
            self.seen[batch_id] = self.chain.batch(batch_id)
        return self.seen[batch_id]


PROOF_PURPOSE = PurposeOfUse.OPERATIONS
"""The purpose a proof is asked for by default: checking the gateway's work."""


def proof_auth(
    keys: AccountKeys, chain_id: str, purpose: PurposeOfUse = PROOF_PURPOSE
) -> httpx.Auth:
    """Signs the proof requests of the device or account of `keys` (for `purpose`) for
    the gateway of chain `chain_id`."""
    return ReadAuth(keys, chain_id, purpose)


def device_proof_auths(
    run: FleetRun, devices: Iterable[SimulatedDevice], chain_id: str
) -> dict[bytes, httpx.Auth]:
    """Every reading `run` had accepted, with its device's signer: each simulated device
    asks about its own readings (what `prove_readings` takes)."""
    auths = {d.keys.address: proof_auth(d.keys, chain_id) for d in devices}
    return {rid: auths[device] for device, rids in run.accepted.items() for rid in rids}


def _proof_answer(gateway: httpx.Client, rid: str, auth: httpx.Auth | None) -> dict[str, Any]:
    """The gateway's answer for reading `rid`, if it holds a committed proof."""
    try:
        response = gateway.get(f"/v1/readings/{rid}", auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(
            f"the gateway at {gateway.base_url} did not answer ({exc}); check --gateway"
        ) from None
    if response.status_code == 404:
        raise GatewayUnavailable(f"the gateway at {gateway.base_url} knows no reading {rid}")
    if response.status_code in (401, 403):
        raise GatewayUnavailable(
            f"the gateway at {gateway.base_url} refused to tell of reading {rid}: "
            f"{_message(response)}"
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        raise GatewayUnavailable(
            f"the gateway at {gateway.base_url} answered {response.status_code}: "
            f"{response.text[:200]}"
        )
    if body.get("status") == "pending":
        raise GatewayUnavailable(
            f"reading {rid} is accepted but not committed yet; retry in a moment"
        )
    return body


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    found = body.get("message") if isinstance(body, dict) else None
    return found if isinstance(found, str) else f"HTTP {response.status_code}"


def check_reading_proof(
    gateway: httpx.Client, chain: BatchSource, reading_id: bytes, auth: httpx.Auth | None = None
) -> ProofCheck:
    """Fetch the reading's proof from the gateway (signed by `auth`, else as the client
    signs) and the batch root from the chain. The proof is rebuilt around the id asked
    for, so a gateway cannot prove another reading."""
    rid = reading_id.hex()
    body = _proof_answer(gateway, rid, auth)
    try:
        batch_id = _hex(body, "batch", BATCH_ID_SIZE)
        raw = body["proof"]
        proof = ReadingProof(
            reading_id,
            _hex(raw, "root", 32),
            int(raw["index"]),
            int(raw["tree_size"]),
            tuple(bytes.fromhex(h) for h in raw["path"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GatewayUnavailable(f"the gateway's answer for {rid} is not a proof: {exc}") from None
    batch = chain.batch(batch_id)
    return ProofCheck(reading_id, batch_id, proof, None if batch is None else batch.root)


def prove_reading(
    gateway: str, chain: BatchSource, reading_id: bytes, auth: httpx.Auth
) -> ProofCheck:
    """`check_reading_proof` against the gateway at URL `gateway`, signed by `auth`."""
    with httpx.Client(base_url=gateway, timeout=10.0) as http:
        return check_reading_proof(http, chain, reading_id, auth)


@dataclass(frozen=True)
class ProofTally:
    """What proving a run's readings found: how many, and why each failure failed."""

    total: int
    failures: dict[bytes, str]
    """Reading id -> why it is not proven."""
    batches: dict[bytes, Batch | None]
    """The batches read from the chain, by id."""

    @property
    def proven(self) -> int:
        return self.total - len(self.failures)


def prove_readings(
    gateway: str,
    chain: BatchSource,
    readings: Mapping[bytes, httpx.Auth],
    progress: ProgressBar | None = None,
) -> ProofTally:
    """Check every reading's Merkle proof (from the gateway, asked for with the reading's
    own signer in `readings`: its device's, say) against its batch's root on chain, each
    batch read once. A reading the gateway cannot prove (unknown, still pending, refused,
    an answer that is no proof) is a failure with the reason, not an error: the tally
    counts them all."""
    batches = CachedBatches(chain)
    failures: dict[bytes, str] = {}
    task = progress.add_task("proving", total=len(readings)) if progress else None
    with httpx.Client(base_url=gateway, timeout=10.0) as http:
        for rid, auth in readings.items():
            try:
                check = check_reading_proof(http, batches, rid, auth)
                if not check.verified:
                    failures[rid] = check.reason
            except GatewayUnavailable as exc:
                failures[rid] = exc.message
            if progress is not None and task is not None:
                progress.advance(task)
    return ProofTally(len(readings), failures, batches.seen)
