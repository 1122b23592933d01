"""Benchmarks: load generators and reports (never timed tests)."""

from medchain.bench._ledger import LedgerBenchResult, run_ledger_bench, sample_record

__all__ = ["LedgerBenchResult", "run_ledger_bench", "sample_record"]
