"""The node's anchoring loop: sends the checkpoints its validators certified to the
anchor contract on the verification chain, reads the anchors back, and checks its
own stored blocks against them (passive verification).

Everything that talks to Ethereum or reads the whole chain runs on one worker thread
(with its own read connection to the chain store: SQLite's WAL lets it read while the
node writes), so neither a slow JSON-RPC endpoint nor an audit pass stalls consensus.
The loop thread only hands over certificates and reads the latest report."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from medchain.anchor import (
    AlreadyAnchored,
    Anchor,
    AnchorSettings,
    ChainAuditor,
    CheckpointCertificate,
    CheckpointSignature,
    VerifyReport,
    anchor_is_valid,
)
from medchain.consensus import CheckpointCertified, quorum_size
from medchain.types import Genesis, MedchainError

if TYPE_CHECKING:
    from medchain.anchor import AnchorContract

log = logging.getLogger("medchain.anchoring")

AUDIT_SWEEP_BYTES = 64 * 1024
"""Stored bytes of old blocks whose transactions the passive check re-hashes per pass
(at least one block; new blocks: headers and links only, consensus checked their
bodies as it committed them): an edit anywhere in a 1 GB chain is found within about
half a day at one pass every 3 s, for a millisecond or so per pass."""
CONFLICT_CHECK_EVERY = 10
"""Passes between two reads of the conflicts the contract recorded."""


@dataclass(frozen=True, slots=True)
class AnchoringStatus:
    """What `/v1/anchoring` and `medchain verify` show of a node's anchoring."""

    settings: AnchorSettings
    sender: bool
    """True if this node sends anchors (a validator with anchoring enabled)."""
    anchored_height: int
    """Highest height anchored on the verification chain (final or not)."""
    final_height: int
    """Highest height whose anchor is final and signed by a quorum of validators."""
    anchors_sent: int
    """Anchor transactions this node sent since it started."""
    last_error: str
    report: VerifyReport | None
    """The latest passive verification of this node's own blocks (None before the first)."""
    checked_ms: int
    """Wall-clock time of that report (0 before the first)."""


class AnchorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.anchored_height = Gauge(
            "medchain_anchor_height",
            "Highest height anchored on the verification chain",
            registry=r,
        )
        self.final_height = Gauge(
            "medchain_anchor_final_height", "Highest height whose anchor is final", registry=r
        )
        self.verified_height = Gauge(
            "medchain_anchor_verified_height",
            "Highest anchored height this node's stored chain was verified against",
            registry=r,
        )
        self.mismatch = Gauge(
            "medchain_anchor_mismatch",
            "1 when this node's stored chain disagrees with a final anchor (the alarm)",
            registry=r,
        )
        self.conflicts = Gauge(
            "medchain_anchor_conflicts",
            "Conflicting anchors the contract recorded as evidence for this chain",
            registry=r,
        )
        self.sent = Counter("medchain_anchors_sent", "Anchor transactions sent", registry=r)
        self.errors = Counter(
            "medchain_anchor_errors", "Failed verification-chain calls", registry=r
        )
        self.cpu_seconds = Counter(
            "medchain_anchor_cpu_seconds",
            "CPU time the anchoring thread used (Ethereum calls, passive checks)",
            registry=r,
        )
        self.submit_seconds = Histogram(
            "medchain_anchor_submit_seconds",
            "From certified checkpoint to the anchor transaction's receipt",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
            registry=r,
        )


class Anchoring:
    """Create with the node's settings; feed `on_certified` from the engine's actions;
    run `run()` as a task; read `status()`; `close()` when the node stops."""

    def __init__(
        self,
        settings: AnchorSettings,
        home: Path,
        genesis: Genesis,
        store_path: Path,
        validators: tuple[bytes, ...],
        me: bytes,
        registry: CollectorRegistry,
        *,
        turn_ms: int | None = None,
    ) -> None:
        self.settings = settings
        self._home = home
        self._genesis = genesis
        self._store_path = store_path
        self._validators = validators
        self._quorum = quorum_size(len(validators))
        self._me = me
        self.sender = settings.enabled and me in validators
        self.metrics = AnchorMetrics(registry)
        self._turn_s = (turn_ms if turn_ms is not None else max(3 * settings.poll_ms, 3_000)) / 1000
        """How long each validator waits for the one before it in the rotation."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anchoring")
        self._lock = threading.Lock()
        self._pending: tuple[CheckpointCertificate, float] | None = None
        """Newest certified checkpoint not yet anchored, and when it was certified."""
        from medchain.anchor import AnchorContract  # web3: imported by nodes that anchor only

        self._client_class = AnchorContract
        self._contract: AnchorContract | None = None
        self._auditor: ChainAuditor | None = None
        self._anchors: dict[int, Anchor] = {}
        self._final: dict[int, bytes] = {}
        self._status = AnchoringStatus(settings, self.sender, 0, 0, 0, "", None, 0)
        self._mismatch_logged: tuple[int, str] | None = None
        self._conflicts_logged = 0
        self._validity: dict[tuple[int, bytes, bytes, tuple[CheckpointSignature, ...]], bool] = {}
        self._passes = 0
        self._closed = False

    # -- loop thread ------------------------------------------------------------------

    def on_certified(self, action: CheckpointCertified) -> None:
        """Keep only the newest certificate: anchor heights must increase, so an older
        one still waiting would be refused once a newer one is in."""
        if not self.sender:
            return
        checkpoint = action.checkpoint
        certificate = CheckpointCertificate(
            self._genesis.chain_id,
            checkpoint.height,
            checkpoint.block_hash,
            checkpoint.state_root,
            tuple(CheckpointSignature(s.validator, s.signature) for s in action.signatures),
        )
        with self._lock:
            if self._pending is None or self._pending[0].height < checkpoint.height:
                self._pending = (certificate, time.monotonic())

    def final_anchor(self, height: int) -> bytes | None:
        """Block hash a final anchor fixes at `height` (the node refuses any other)."""
        return self._final.get(height)

    def status(self) -> AnchoringStatus:
        return self._status

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            started = time.monotonic()
            try:
                await loop.run_in_executor(self._pool, self._pass)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed pass must never stop the node
                self.metrics.errors.inc()
                message = exc.message if isinstance(exc, MedchainError) else repr(exc)
                self._status = replace(self._status, last_error=message)
                log.warning("anchoring: %s", message)
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.05, self.settings.poll_ms / 1000 - elapsed))

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._close_worker)
        self._pool.shutdown(wait=True)

    # -- worker thread ----------------------------------------------------------------

    def _close_worker(self) -> None:
        if self._auditor is not None:
            self._auditor.close()
            self._auditor = None

    def _connect(self) -> AnchorContract:
        if self._contract is None:
            self._contract = self._client_class.connect(
                self.settings, self._home, sender=self.sender
            )
        return self._contract

    def _pass(self) -> None:
        cpu = time.thread_time()
        try:
            contract = self._connect()
            self._read_anchors(contract)
            if self.sender:
                self._maybe_send(contract)
            self._audit()
        finally:
            self.metrics.cpu_seconds.inc(time.thread_time() - cpu)

    def _read_anchors(self, contract: AnchorContract) -> None:
        """Re-read from the lowest anchor not yet final (its finality may have
        changed), keep the rest."""
        pending = [h for h, a in self._anchors.items() if not a.final]
        start = min(pending) if pending else max(self._anchors, default=-1) + 1
        settled = [a.eth_block for h, a in self._anchors.items() if a.final and h < start]
        found = contract.anchors(self._genesis.chain_id, start, max(settled, default=0))
        for anchor in found:
            self._anchors[anchor.height] = anchor
        final = {h: a.block_hash for h, a in self._anchors.items() if a.final and self._valid(a)}
        self._final = final  # only these may make the node refuse a block
        anchored = max(self._anchors, default=0)
        final_height = max(final, default=0)
        self.metrics.anchored_height.set(anchored)
        self.metrics.final_height.set(final_height)
        self._status = replace(
            self._status, anchored_height=anchored, final_height=final_height, last_error=""
        )
        self._passes += 1
        if self._passes % CONFLICT_CHECK_EVERY != 1:
            return
        conflicts = contract.conflicts(self._genesis.chain_id)
        self.metrics.conflicts.set(len(conflicts))
        if len(conflicts) > self._conflicts_logged:
            for conflict in conflicts[self._conflicts_logged :]:
                log.error(
                    "ALARM: a second, different anchor for height %d was sent by %s "
                    "(recorded as evidence on the verification chain)",
                    conflict.height,
                    conflict.conflicting.submitter,
                )
            self._conflicts_logged = len(conflicts)

    def _valid(self, anchor: Anchor) -> bool:
        """Signed by a quorum of the validators (checked once per anchor): an anchor
        a submitter forged must never make the node refuse the real block."""
        key = (anchor.height, anchor.block_hash, anchor.state_root, anchor.signatures)
        known = self._validity.get(key)
        if known is None:
            known = anchor_is_valid(anchor, self._validators, self._quorum)
            self._validity[key] = known
        return known

    def _my_turn(self, height: int, certified_at: float) -> bool:
        """Validators take turns by checkpoint; if the one whose turn it is sends
        nothing, the next one does after `turn_ms`, and so on."""
        n = len(self._validators)
        turn = (height // self._genesis.params.checkpoint_interval) % n
        rank = (self._validators.index(self._me) - turn) % n
        return time.monotonic() - certified_at >= rank * self._turn_s

    def _maybe_send(self, contract: AnchorContract) -> None:
        with self._lock:
            pending = self._pending
        if pending is None:
            return
        certificate, certified_at = pending
        if certificate.height <= max(self._anchors, default=0):
            self._drop_pending(certificate)  # someone else anchored it, or a newer one
            return
        if not self._my_turn(certificate.height, certified_at):
            return
        try:
            contract.submit(certificate)
        except AlreadyAnchored:
            pass  # another validator's transaction got in first
        else:
            self.metrics.sent.inc()
            self.metrics.submit_seconds.observe(time.monotonic() - certified_at)
            self._status = replace(self._status, anchors_sent=self._status.anchors_sent + 1)
            log.info("anchored height %d", certificate.height)
        self._drop_pending(certificate)
        self._read_anchors(contract)

    def _drop_pending(self, certificate: CheckpointCertificate) -> None:
        with self._lock:
            if self._pending is not None and self._pending[0] is certificate:
                self._pending = None

    def _audit(self) -> None:
        if self._auditor is None:
            self._auditor = ChainAuditor(
                self._store_path,
                self._validators,
                self._quorum,
                chain_id=self._genesis.chain_id,
                check_new_bodies=False,
            )
        anchors = [self._anchors[h] for h in sorted(self._anchors)]
        report = self._auditor.step(anchors, sweep_bytes=AUDIT_SWEEP_BYTES)
        self.metrics.verified_height.set(report.last_verified_height)
        mismatch = report.first_mismatch
        self.metrics.mismatch.set(0 if mismatch is None else 1)
        if mismatch is not None and self._mismatch_logged != (mismatch.height, mismatch.what):
            self._mismatch_logged = (mismatch.height, mismatch.what)
            log.error(
                "ALARM: the stored chain disagrees with the verification chain at height %d "
                "(%s: expected %s, found %s). Stop the node and run `medchain recover --home %s`",
                mismatch.height,
                mismatch.what,
                _hex(mismatch.expected),
                _hex(mismatch.found),
                self._home,
            )
        self._status = replace(self._status, report=report, checked_ms=int(time.time() * 1000))


def _hex(value: Any) -> str:
    return value.hex() if isinstance(value, bytes | bytearray) else str(value)
