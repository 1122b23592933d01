"""How much each edge-gateway reading leaves behind: bytes of committed state (what
every node keeps under the state root and a snapshot carries) and bytes on disk (the
chain store: blocks, receipts, state; and whatever the node indexes beside it). A
benchmark, not a test: it commits real `devices.commit_batch` transactions into a
`LocalChain` on disk and measures before and after.

Two loads, each one batch a second (the gateway's default `batch_max_delay_ms`):
paper 001's district (about 67 readings/s, each its own bundle) and 5,000 readings/s
from 200 patients (200 bundles of 25). Bytes per day are the bytes per batch times
86,400."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medchain.app import (
    MS_PER_DAY,
    Bundle,
    CommitBatchArgs,
    DeviceKind,
    OrgKind,
    RegisterArgs,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    Role,
    registration_message,
)
from medchain.bench._report import Report, machine
from medchain.client import genesis_organisation
from medchain.crypto import AccountKeys, sha256, signed_tx
from medchain.node import LocalChain
from medchain.offchain import MemoryBlobStore, cid_for
from medchain.store import ChainStore
from medchain.types import ChainParams, Genesis, GenesisValidator, Tx

SECONDS_PER_DAY = 86_400
T0 = 19_844 * MS_PER_DAY
"""2024-05-01T00:00:00Z: the readings' first second."""
CHAIN_ID = "medchain-growth"


@dataclass(frozen=True)
class GrowthLoad:
    name: str
    bundles: int
    """Bundles per batch: patients with readings in that second."""
    readings_per_bundle: int

    @property
    def readings_per_s(self) -> int:
        return self.bundles * self.readings_per_bundle


DISTRICT = GrowthLoad("district (paper 001)", 67, 1)
PEAK = GrowthLoad("peak, 200 patients", 200, 25)


@dataclass(frozen=True)
class Growth:
    load: GrowthLoad
    batches: int
    state_entries: int
    """Entries the batches added to the committed state."""
    state_bytes: int
    """Their keys' and values' bytes."""
    disk_bytes: dict[str, int]
    """Bytes of pages in use the batches added, per SQLite file of the data directory."""

    @property
    def readings(self) -> int:
        return self.batches * self.load.readings_per_s

    def per_reading(self, size: int) -> float:
        return size / self.readings

    def per_day(self, size: int) -> float:
        """Bytes a day at one batch a second."""
        return size / self.batches * SECONDS_PER_DAY


def run_growth_bench(
    loads: tuple[GrowthLoad, ...] = (DISTRICT, PEAK),
    batches: int = 60,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Growth]:
    """Commit `batches` batches of each load into a fresh chain on disk; measure."""
    results = []
    for load in loads:
        with tempfile.TemporaryDirectory(prefix="medchain-growth-") as tmp:
            results.append(_measure(Path(tmp), load, batches, progress))
    return results


class _Fleet:
    """A chain founded by a hospital, whose admin registers its one gateway, and
    `patients` patients, each with one device."""

    def __init__(self, home: Path, patients: int) -> None:
        self.validator = AccountKeys.generate()
        hospital, self.gateway = AccountKeys.generate(), AccountKeys.generate()
        founder = genesis_organisation(
            "growth-hospital",
            "growth bench hospital",
            OrgKind.HOSPITAL,
            [hospital],
            AccountKeys.generate(),
        )
        genesis = Genesis(
            CHAIN_ID,
            T0,
            ChainParams(),
            (),
            (GenesisValidator(self.validator.public_key, "v0", organisation=founder.org_id),),
            organisations=(founder,),
        )
        store = ChainStore(home / "chain.sqlite")
        self.chain = LocalChain(genesis, self.validator, store, MemoryBlobStore())
        # the node's indexes, kept up to date from the first block as a node keeps them
        self.chain.vitals_index()
        self.chain.fleet_index()
        self.nonces: dict[bytes, int] = {}
        self.patients = [AccountKeys.generate() for _ in range(patients)]
        self.devices = [AccountKeys.generate() for _ in range(patients)]
        gateway = RegisterGatewayArgs(self.gateway.address, "growth bench")
        self._seal([self._tx(hospital, "devices.register_gateway", gateway)])
        self._seal([self._tx(p, "registry.register", _register(p)) for p in self.patients])
        self._seal(
            [
                self._tx(patient, "devices.register", self._device_args(patient, device))
                for patient, device in zip(self.patients, self.devices, strict=True)
            ]
        )

    def _device_args(self, patient: AccountKeys, device: AccountKeys) -> RegisterDeviceArgs:
        proof = device.sign(registration_message(CHAIN_ID, patient.address))
        return RegisterDeviceArgs(
            device.public_key, patient.address, DeviceKind.HEART_RATE, b"", proof
        )

    def _tx(self, keys: AccountKeys, method: str, args: object) -> Tx:
        nonce = self.nonces.get(keys.address, 0)
        self.nonces[keys.address] = nonce + 1
        return signed_tx(keys, CHAIN_ID, nonce, method, args)

    def _seal(self, txs: list[Tx]) -> None:
        for start in range(0, len(txs), self.chain.params.max_block_txs):
            sealed = self.chain.seal(txs[start : start + self.chain.params.max_block_txs])
            refused = [r for r in sealed.receipts if not r.ok]
            if refused:
                raise RuntimeError(f"the growth bench's set-up failed: {refused[0].message}")

    def commit_second(self, second: int, load: GrowthLoad) -> None:
        """One batch: a bundle per patient of the readings of one second."""
        start = T0 + second * 1_000
        bundles = []
        for patient, device in sorted(
            zip(self.patients, self.devices, strict=True), key=lambda pair: pair[0].address
        ):
            sealed = sha256(patient.address + start.to_bytes(8, "big"))
            last = start + load.readings_per_bundle - 1
            bundles.append(
                Bundle(
                    patient.address,
                    cid_for(sealed),
                    sha256(sealed),
                    load.readings_per_bundle,
                    start,
                    last,
                    (device.address,),
                )
            )
        root = sha256(b"growth batch" + start.to_bytes(8, "big"))
        args = CommitBatchArgs(root, load.readings_per_s, tuple(bundles))
        self._seal([self._tx(self.gateway, "devices.commit_batch", args)])


def _register(patient: AccountKeys) -> RegisterArgs:
    return RegisterArgs(Role.PATIENT, "", patient.encryption_public_key)


def _measure(
    home: Path,
    load: GrowthLoad,
    batches: int,
    progress: Callable[[str, int, int], None] | None,
) -> Growth:
    fleet = _Fleet(home, load.bundles)
    store = fleet.chain.store
    state_before = store.load_state()
    disk_before = _disk_bytes(home)
    for second in range(batches):
        fleet.commit_second(second, load)
        if progress is not None:
            progress(load.name, second + 1, batches)
    state_after = store.load_state()
    disk_after = _disk_bytes(home)
    fleet.chain.close()
    return Growth(
        load=load,
        batches=batches,
        state_entries=len(state_after) - len(state_before),
        state_bytes=_state_bytes(state_after) - _state_bytes(state_before),
        disk_bytes={
            name: disk_after.get(name, 0) - disk_before.get(name, 0) for name in sorted(disk_after)
        },
    )


def _state_bytes(entries: dict[bytes, bytes]) -> int:
    return sum(len(key) + len(value) for key, value in entries.items())


def _disk_bytes(home: Path) -> dict[str, int]:
    """Bytes of the pages in use in each SQLite file of `home` (WAL included: a reader
    sees the frames not yet checkpointed), so the figure does not depend on when SQLite
    last checkpointed or on free pages it keeps."""
    sizes = {}
    for path in sorted(home.glob("*.sqlite")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
        finally:
            db.close()
        sizes[path.name] = (int(pages) - int(free)) * int(page_size)
    return sizes


def growth_report(results: list[Growth]) -> Report:
    columns = (
        "load",
        "state B/reading",
        "state GB/day",
        "disk B/reading (per file)",
        "disk GB/day",
    )
    report = Report(f"growth per reading — {machine()}", columns)
    for g in results:
        disk = sum(g.disk_bytes.values())
        files = ", ".join(
            f"{name} {g.per_reading(size):,.0f}" for name, size in g.disk_bytes.items()
        )
        report.rows.append(
            (
                f"{g.load.name}: {g.load.readings_per_s:,} readings/s, "
                f"{g.load.bundles} bundles/batch",
                f"{g.per_reading(g.state_bytes):,.0f}",
                f"{g.per_day(g.state_bytes) / 1e9:.2f}",
                f"{g.per_reading(disk):,.0f} ({files})",
                f"{g.per_day(disk) / 1e9:.2f}",
            )
        )
    report.notes.append(
        "state: keys and values the batches added to the committed state; disk: pages in "
        "use they added to the data directory's SQLite files; a day is 86,400 batches"
    )
    return report
