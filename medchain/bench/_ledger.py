"""Ledger benchmark: how fast one core validates and applies signed transactions,
how fast blocks are sealed to disk, and how long sealing a 2 KB FHIR record for
three readers takes. Figures go to docs/BENCHMARKS.md; this is never a test."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medchain.app import (
    BlockContext,
    Ledger,
    TransferArgs,
    apply_checked_tx,
    check_tx_static,
    decode_tx,
)
from medchain.client import canonical_json, seal, version_context
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import LocalChain
from medchain.types import Allocation, Genesis, GenesisValidator

Progress = Callable[[str, int, int], None]
CHAIN_ID = "medchain-bench"


@dataclass(frozen=True)
class LedgerBenchResult:
    txs: int
    validate_apply_tx_per_s: float
    validate_apply_us_per_tx: float
    sealed_tx_per_s: float
    block_size: int
    record_bytes: int
    readers: int
    seal_record_ms_mean: float
    seal_record_ms_p50: float
    seal_record_ms_p99: float


def _no_progress(_: str, __: int, ___: int) -> None:
    pass


def _transfers(count: int, senders: int) -> tuple[Genesis, AccountKeys, list[bytes]]:
    validator = AccountKeys.generate()
    accounts = [AccountKeys.generate() for _ in range(senders)]
    genesis = Genesis(
        CHAIN_ID,
        0,
        allocations=tuple(Allocation(a.address, 10**12) for a in accounts),
        validators=(GenesisValidator(validator.public_key, "bench"),),
    )
    raw = []
    for i in range(count):
        sender = accounts[i % senders]
        recipient = accounts[(i + 1) % senders].address
        tx = signed_tx(
            sender, CHAIN_ID, i // senders, "accounts.transfer", TransferArgs(recipient, 1)
        )
        raw.append(tx.encoded)
    return genesis, validator, raw


def bench_validate_apply(
    genesis: Genesis, raw: list[bytes], block_size: int, progress: Progress
) -> float:
    """Seconds to decode, fully check (signature, nonce, fee) and apply every transaction."""
    ledger = Ledger(genesis)
    params = genesis.params
    elapsed = 0.0
    for start in range(0, len(raw), block_size):
        chunk = raw[start : start + block_size]
        context = BlockContext(CHAIN_ID, start // block_size + 1, start, b"\x00" * 20, params)
        began = time.perf_counter()
        ledger.state.begin_block()
        for data in chunk:
            tx = decode_tx(data, params)
            args = check_tx_static(tx, CHAIN_ID, params)
            receipt = apply_checked_tx(ledger.state, context, tx, args)
            assert receipt.ok
        ledger.state.end_block()
        elapsed += time.perf_counter() - began
        progress("validate+apply", min(start + block_size, len(raw)), len(raw))
    return elapsed


def bench_sealed(
    genesis: Genesis, validator: AccountKeys, raw: list[bytes], block_size: int, progress: Progress
) -> float:
    """Seconds to turn the transactions into signed blocks persisted in SQLite (fsync on)."""
    with tempfile.TemporaryDirectory(prefix="medchain-bench-") as tmp:
        chain = LocalChain.create(Path(tmp) / "chain", genesis, validator)
        txs = [decode_tx(data, genesis.params) for data in raw]
        began = time.perf_counter()
        for start in range(0, len(txs), block_size):
            chain.seal(txs[start : start + block_size])
            progress("sealed blocks", min(start + block_size, len(txs)), len(txs))
        elapsed = time.perf_counter() - began
        chain.close()
    return elapsed


def sample_record(target_bytes: int = 2048) -> dict[str, object]:
    """A realistic Observation padded with a clinical note to about `target_bytes`."""
    resource: dict[str, object] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}
            ]
        },
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2026-11-21T09:00:00+01:00",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {
                    "value": 128,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {
                    "value": 84,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }
    base = len(canonical_json(resource))
    note = "Patient seated, rested five minutes, left arm, adult cuff. " * 64
    resource["note"] = [{"text": note[: max(0, target_bytes - base - 20)]}]
    return resource


def bench_seal_record(iterations: int, readers: int, progress: Progress) -> tuple[int, list[float]]:
    plaintext = canonical_json(sample_record())
    keys = {
        k.address: k.encryption_public_key for k in (AccountKeys.generate() for _ in range(readers))
    }
    timings = []
    for i in range(iterations):
        began = time.perf_counter()
        seal(plaintext, version_context(b"\x01" * 16, 1), keys)
        timings.append((time.perf_counter() - began) * 1000)
        if i % 100 == 99:
            progress("encrypt+wrap", i + 1, iterations)
    return len(plaintext), timings


def run_ledger_bench(
    txs: int = 20_000,
    block_size: int = 1_000,
    seal_iterations: int = 2_000,
    progress: Progress = _no_progress,
) -> LedgerBenchResult:
    genesis, validator, raw = _transfers(txs, senders=64)
    apply_seconds = bench_validate_apply(genesis, raw, block_size, progress)
    sealed_seconds = bench_sealed(genesis, validator, raw, block_size, progress)
    size, timings = bench_seal_record(seal_iterations, 3, progress)
    timings.sort()
    return LedgerBenchResult(
        txs=txs,
        validate_apply_tx_per_s=txs / apply_seconds,
        validate_apply_us_per_tx=apply_seconds / txs * 1e6,
        sealed_tx_per_s=txs / sealed_seconds,
        block_size=block_size,
        record_bytes=size,
        readers=3,
        seal_record_ms_mean=statistics.fmean(timings),
        seal_record_ms_p50=timings[len(timings) // 2],
        seal_record_ms_p99=timings[int(len(timings) * 0.99)],
    )
