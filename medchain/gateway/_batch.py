"""A batch of verified readings, as a gateway commits it to the chain: one Merkle root
over the reading ids (RFC 6962, medchain.crypto) and one bundle per patient and UTC day
of the readings (the device's signed time), so the chain can index a patient's bundles
by day and readers find them by time.

The chain stores only the root and the patients' encrypted bundles, yet any single
reading can later be proven part of the batch with its audit path, without revealing
the other readings. Order is deterministic (readings sorted by id, bundles by patient
then day), so two gateways given the same readings build byte-identical batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from medchain.app import MS_PER_DAY
from medchain.crypto import (
    MerkleProof,
    address_from_public_key,
    inclusion_proof,
    inclusion_proofs,
    merkle_root,
    verify_inclusion,
)
from medchain.gateway._readings import SignedReading
from medchain.types import HASH_SIZE, MedchainError, encode


class BatchError(MedchainError):
    """A batch that cannot be built or a reading that is not in it."""

    code = "bad_batch"


@dataclass(frozen=True)
class BatchEntry:
    """A reading the gateway has verified, with the patient it belongs to (from its
    Observation's subject)."""

    patient: str
    reading: SignedReading


@dataclass(frozen=True)
class PatientBundle:
    """The readings of one patient and one UTC day in one batch, sorted by reading id:
    the plaintext the gateway encrypts for the patient and the patient's authorised
    readers."""

    patient: str
    day: int
    """Days since the Unix epoch (UTC) of every reading's time."""
    readings: tuple[SignedReading, ...]

    @cached_property
    def encoded(self) -> bytes:
        return encode(self)

    @property
    def time_from_ms(self) -> int:
        """Time of the first reading."""
        return min(r.reading.timestamp_ms for r in self.readings)

    @property
    def time_to_ms(self) -> int:
        """Time of the last reading."""
        return max(r.reading.timestamp_ms for r in self.readings)

    @cached_property
    def devices(self) -> tuple[bytes, ...]:
        """The addresses of the devices whose readings it holds, sorted."""
        return tuple(sorted({address_from_public_key(r.reading.device) for r in self.readings}))


def reading_day(reading: SignedReading) -> int:
    """The UTC day (days since the Unix epoch) a reading belongs to, by its signed time."""
    return reading.reading.timestamp_ms // MS_PER_DAY


@dataclass(frozen=True)
class ReadingProof:
    """Proof that the reading with `reading_id` sits at `index` among `tree_size` readings
    under the batch root `root`; `path` is the RFC 6962 audit path."""

    reading_id: bytes
    root: bytes
    index: int
    tree_size: int
    path: tuple[bytes, ...]


class Batch:
    """Readings sorted by id, their Merkle root and the bundles, one per patient and
    UTC day."""

    def __init__(self, entries: Iterable[BatchEntry]) -> None:
        keyed: dict[bytes, BatchEntry] = {}
        for entry in entries:
            rid = entry.reading.reading_id
            if rid in keyed:
                raise BatchError(
                    f"reading {rid.hex()} is in the batch twice; a reading is committed once"
                )
            keyed[rid] = entry
        self.reading_ids: tuple[bytes, ...] = tuple(sorted(keyed))
        self.entries: tuple[BatchEntry, ...] = tuple(keyed[rid] for rid in self.reading_ids)
        self._index = {rid: i for i, rid in enumerate(self.reading_ids)}
        self.root: bytes = merkle_root(self.reading_ids)
        grouped: dict[tuple[str, int], list[SignedReading]] = {}
        for entry in self.entries:
            key = (entry.patient, reading_day(entry.reading))
            grouped.setdefault(key, []).append(entry.reading)
        self.bundles: tuple[PatientBundle, ...] = tuple(
            PatientBundle(patient, day, tuple(grouped[patient, day]))
            for patient, day in sorted(grouped)
        )

    def __len__(self) -> int:
        return len(self.reading_ids)

    def __contains__(self, reading_id: object) -> bool:
        return reading_id in self._index

    def prove(self, reading_id: bytes) -> ReadingProof:
        """The proof for one reading of this batch; BatchError if it is not in it."""
        return prove(self, reading_id)

    def proofs(self) -> dict[bytes, ReadingProof]:
        """Every reading's proof by reading id, from one pass over the tree."""
        return {
            reading_id: ReadingProof(reading_id, self.root, p.index, p.tree_size, p.path)
            for reading_id, p in zip(
                self.reading_ids, inclusion_proofs(self.reading_ids), strict=True
            )
        }


def prove(batch: Batch, reading_id: bytes) -> ReadingProof:
    """The Merkle proof that `reading_id` is in `batch`."""
    index = batch._index.get(reading_id)
    if index is None:
        raise BatchError(f"reading {reading_id.hex()} is not in this batch")
    proof = inclusion_proof(batch.reading_ids, index)
    return ReadingProof(reading_id, batch.root, index, proof.tree_size, proof.path)


def verify_proof(proof: ReadingProof, root: bytes) -> bool:
    """True iff `proof` shows its reading under `root` (e.g. the root read from the chain).

    Never raises, so it is safe on proofs received from anyone. To prove a particular
    reading, also compare `proof.reading_id` with `reading_id(reading)`."""
    if (
        not isinstance(proof, ReadingProof)
        or not isinstance(proof.reading_id, bytes)
        or len(proof.reading_id) != HASH_SIZE
        or proof.root != root
    ):
        return False
    merkle = MerkleProof(index=proof.index, tree_size=proof.tree_size, path=proof.path)
    return verify_inclusion(root, proof.reading_id, merkle)
