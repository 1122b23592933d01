"""The validate ceiling of a network benchmark: what the machine's cores could commit
if validating and applying transfers were all the validators did, each validator doing
all of it on its share of the cores — `cores x one-core rate / validators`. Measured in
the same sitting as the run (before the devnet starts, as `medchain bench ledger` does),
so a run's throughput as a share of it compares across machines and days."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

from medchain.bench._ledger import Progress, _transfers, bench_validate_apply

CEILING_TXS = 10_000
"""Transfers validated and applied: about 1 to 2 s on one core at 5,000 to 10,000 tx/s,
plus signing them first (about a third of that)."""
CEILING_FORMULA = "cores x one-core validate+apply rate / validators"


@dataclass(frozen=True)
class ValidateCeiling:
    txs: int
    """Transfers validated and applied (in blocks of 1,000)."""
    measured_s: float
    """How long the measurement took, signing the transfers included."""
    one_core_tx_per_s: float
    """`medchain bench ledger`'s validate+apply rate, measured in this sitting."""
    cores: int
    validators: int
    ceiling_tx_per_s: float
    """cores x one_core_tx_per_s / validators."""
    sustained_share: float = 0.0
    """The run's sustained throughput / ceiling_tx_per_s (0 until the run ends)."""


def ceiling_tx_per_s(one_core_tx_per_s: float, cores: int, validators: int) -> float:
    """Every validator validates and applies every transaction, on its share of the
    cores: the most the devnet could commit if nothing else took CPU."""
    return cores * one_core_tx_per_s / validators


def measure_ceiling(
    validators: int, progress: Progress, txs: int = CEILING_TXS, cores: int | None = None
) -> ValidateCeiling:
    """Measure the one-core rate now (`cores`: os.cpu_count() unless given)."""
    began = time.perf_counter()
    genesis, _, raw = _transfers(txs, senders=64)
    elapsed = bench_validate_apply(genesis, raw, 1_000, progress)
    rate = txs / elapsed
    cores = cores or os.cpu_count() or 1
    return ValidateCeiling(
        txs=txs,
        measured_s=time.perf_counter() - began,
        one_core_tx_per_s=rate,
        cores=cores,
        validators=validators,
        ceiling_tx_per_s=ceiling_tx_per_s(rate, cores, validators),
    )


def with_share(ceiling: ValidateCeiling, sustained_tx_per_s: float) -> ValidateCeiling:
    """The ceiling with the run's sustained throughput as a share of it."""
    share = sustained_tx_per_s / ceiling.ceiling_tx_per_s if ceiling.ceiling_tx_per_s else 0.0
    return dataclasses.replace(ceiling, sustained_share=share)
