"""The validate ceiling: cores x the one-core validate+apply rate / validators, measured
as `medchain bench ledger` measures it, and a run's throughput as a share of it."""

from __future__ import annotations

import dataclasses

import pytest

from medchain.bench._ceiling import (
    ValidateCeiling,
    ceiling_tx_per_s,
    measure_ceiling,
    with_share,
)


def test_the_ceiling_is_cores_times_the_one_core_rate_over_validators() -> None:
    assert ceiling_tx_per_s(4_698.0, 2, 4) == pytest.approx(2_349.0)
    assert ceiling_tx_per_s(10_892.0, 2, 4) == pytest.approx(5_446.0)
    assert ceiling_tx_per_s(1_000.0, 8, 10) == pytest.approx(800.0)


def test_a_short_measurement_gives_the_rate_and_the_share() -> None:
    ceiling = measure_ceiling(4, lambda _s, _d, _t: None, txs=300, cores=2)
    assert (ceiling.txs, ceiling.cores, ceiling.validators) == (300, 2, 4)
    assert ceiling.one_core_tx_per_s > 0 and ceiling.measured_s > 0
    assert ceiling.ceiling_tx_per_s == pytest.approx(2 * ceiling.one_core_tx_per_s / 4)
    assert ceiling.sustained_share == 0.0  # no run yet
    half = with_share(ceiling, ceiling.ceiling_tx_per_s / 2)
    assert half.sustained_share == pytest.approx(0.5)
    assert half.one_core_tx_per_s == ceiling.one_core_tx_per_s


def test_the_issues_figures_give_its_share() -> None:
    """PBFT at 1,127 tx/s beside a one-core rate of 4,698 tx/s, on 2 cores, 4 validators:
    48 % of the ceiling, as issue 20 reads it."""
    ceiling = ValidateCeiling(10_000, 2.0, 4_698.0, 2, 4, ceiling_tx_per_s(4_698.0, 2, 4))
    assert round(100 * with_share(ceiling, 1_127.0).sustained_share) == 48
    assert with_share(dataclasses.replace(ceiling, ceiling_tx_per_s=0.0), 5.0).sustained_share == 0
