"""A patient's bundle as stored: sealed for its readers, opened only by them, and bound
to its batch, patient and day; a bundle that would inflate beyond the limit is refused."""

from __future__ import annotations

import zlib

import pytest

from medchain.client import NotAReader, seal
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import DeviceKind, PatientBundle, SimulatedDevice
from medchain.gateway import _bundles as bundles_module
from medchain.gateway._bundles import SealedBundle, bundle_context, open_bundle, seal_bundle
from medchain.types import MedchainError, encode


def _bundle(patient: AccountKeys) -> PatientBundle:
    sim = SimulatedDevice(DeviceKind.THERMOMETER, format_address(patient.address), seed=2)
    readings = tuple(sim.next_reading() for _ in range(3))
    day = readings[0].reading.timestamp_ms // 86_400_000
    return PatientBundle(format_address(patient.address), day, readings)


def test_a_bundle_opens_for_its_readers_only_and_in_its_place() -> None:
    patient, guardian, stranger = (AccountKeys.generate() for _ in range(3))
    bundle = _bundle(patient)
    root = bytes(range(32))
    readers = {k.address: k.encryption_public_key for k in (patient, guardian)}
    blob = seal_bundle(bundle, root, readers)
    for reader in (patient, guardian):
        assert open_bundle(reader, blob, root, patient.address, bundle.day) == bundle
    with pytest.raises(NotAReader):
        open_bundle(stranger, blob, root, patient.address, bundle.day)
    with pytest.raises(MedchainError):  # another batch's root: the seal does not open
        open_bundle(patient, blob, bytes(32), patient.address, bundle.day)


def test_a_bundle_that_inflates_beyond_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = AccountKeys.generate()
    patient = keys.address
    root = bytes(32)
    readers = {patient: keys.encryption_public_key}
    bomb = zlib.compress(bytes(4 * 1024 * 1024), 9)  # 4 MiB of zeros in a few kB
    sealed = seal(bomb, bundle_context(root, patient, 0), readers)
    blob = encode(SealedBundle(sealed.wraps, sealed.ciphertext))
    monkeypatch.setattr(bundles_module, "MAX_BUNDLE_BYTES", 1024 * 1024)
    with pytest.raises(MedchainError, match="inflates beyond"):
        open_bundle(keys, blob, root, patient, 0)
