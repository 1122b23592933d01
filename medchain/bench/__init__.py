"""Benchmarks: load generators and reports (never timed tests)."""

from medchain.bench._app import AppBenchResult, app_report, run_app_bench
from medchain.bench._ceiling import ValidateCeiling
from medchain.bench._fhir import FhirBenchResult, fhir_report, run_fhir_bench
from medchain.bench._flood import FloodResult, ForgedCost, run_flood_bench, run_forged_cost
from medchain.bench._flood import result_json as flood_json
from medchain.bench._gateway import GatewayBenchResult, run_gateway_bench
from medchain.bench._growth import Growth, GrowthLoad, growth_report, run_growth_bench
from medchain.bench._ledger import LedgerBenchResult, run_ledger_bench, sample_record
from medchain.bench._network import (
    LatencySummary,
    NetworkBenchResult,
    run_network_bench,
)
from medchain.bench._node_usage import NodePhase, NodeUsage
from medchain.bench._report import (
    Report,
    flood_report,
    forged_report,
    gateway_report,
    latency_report,
    ledger_report,
    machine,
    network_report,
    node_usage_report,
    ring_report,
    search_report,
    sim_report,
    state_disk_report,
    state_report,
)
from medchain.bench._ring import RingTiming, run_ring_bench
from medchain.bench._search import QueryTiming, SearchBenchResult, run_search_bench
from medchain.bench._sim import SimSpeed, run_sim_bench
from medchain.bench._snapshot import SnapshotSyncTiming, run_snapshot_bench, snapshot_report
from medchain.bench._soak import SoakPlan, run_soak
from medchain.bench._soak_summary import SoakResult, soak_json, soak_reports
from medchain.bench._state import StateRootTiming, run_state_bench
from medchain.bench._state_disk import DiskStateTiming, run_state_disk_bench

__all__ = [
    "AppBenchResult",
    "DiskStateTiming",
    "FhirBenchResult",
    "FloodResult",
    "ForgedCost",
    "GatewayBenchResult",
    "Growth",
    "GrowthLoad",
    "LatencySummary",
    "LedgerBenchResult",
    "NetworkBenchResult",
    "NodePhase",
    "NodeUsage",
    "QueryTiming",
    "Report",
    "RingTiming",
    "SearchBenchResult",
    "SimSpeed",
    "SnapshotSyncTiming",
    "SoakPlan",
    "SoakResult",
    "StateRootTiming",
    "ValidateCeiling",
    "app_report",
    "fhir_report",
    "flood_json",
    "flood_report",
    "forged_report",
    "gateway_report",
    "growth_report",
    "latency_report",
    "ledger_report",
    "machine",
    "network_report",
    "node_usage_report",
    "ring_report",
    "run_app_bench",
    "run_fhir_bench",
    "run_flood_bench",
    "run_forged_cost",
    "run_gateway_bench",
    "run_growth_bench",
    "run_ledger_bench",
    "run_network_bench",
    "run_ring_bench",
    "run_search_bench",
    "run_sim_bench",
    "run_snapshot_bench",
    "run_soak",
    "run_state_bench",
    "run_state_disk_bench",
    "sample_record",
    "search_report",
    "sim_report",
    "snapshot_report",
    "soak_json",
    "soak_reports",
    "state_disk_report",
    "state_report",
]
