"""Enrolling a simulated fleet on chain for `medchain devices simulate`, the gateway's
tests and its benchmark: patients (derived from a seed, so a rerun reuses them) and
their devices, registered in batched transactions, only what the chain still lacks."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from medchain.app import (
    MAX_DEVICES_PER_PATIENT,
    RegisterArgs,
    RegisterDeviceArgs,
    Role,
    TransferArgs,
    registration_message,
)
from medchain.app import DeviceKind as ChainDeviceKind
from medchain.client import ChainBackend, HttpChain, MedchainClient
from medchain.crypto import AccountKeys, format_address, signed_tx, tagged_hash
from medchain.gateway import DeviceKind, MisbehavingDevice, Misbehaviour, SimulatedDevice
from medchain.types import MedchainError, Tx, tx_id

_KINDS = {
    DeviceKind.HEART_RATE_BAND: ChainDeviceKind.HEART_RATE,
    DeviceKind.PULSE_OXIMETER: ChainDeviceKind.PULSE_OXIMETER,
    DeviceKind.THERMOMETER: ChainDeviceKind.THERMOMETER,
    DeviceKind.BLOOD_PRESSURE_CUFF: ChainDeviceKind.BLOOD_PRESSURE,
    DeviceKind.FALL_DETECTOR: ChainDeviceKind.FALL_DETECTOR,
}
# Modes a gateway strikes by default (REPLAY resends are acknowledged as duplicates and
# BAD_SIGNATURE is struck only when configured), so they come first.
MODES = (
    Misbehaviour.NON_CONFORMING,
    Misbehaviour.FLOOD,
    Misbehaviour.BAD_SIGNATURE,
    Misbehaviour.REPLAY,
)


def patient_keys(seed: int, index: int) -> AccountKeys:
    """A simulated patient's keys, derived from the seed so a rerun reuses the fleet."""
    label = f"{seed}/{index}".encode()
    return AccountKeys(
        tagged_hash("medchain/sim-patient-signing", label),
        tagged_hash("medchain/sim-patient-encryption", label),
    )


def _send_all(chain: HttpChain, txs: Sequence[Tx], what: str, timeout_s: float = 60.0) -> None:
    """Submit `txs` in batches (the node takes 256 pending per sender) and wait until all
    are committed; a refusal or a failed call is an error naming it."""
    with httpx.Client(base_url=chain.url, timeout=30.0) as http:
        for start in range(0, len(txs), 200):
            chunk = txs[start : start + 200]
            response = http.post("/v1/txs/batch", json={"txs": [t.encoded.hex() for t in chunk]})
            if response.status_code != 200:
                raise MedchainError(
                    f"the node refused the {what}: {response.status_code} {response.text[:200]}"
                )
            for result in response.json()["results"]:
                already = (result.get("error") or {}).get("code") in (
                    "already_pending",
                    "already_committed",
                )
                if not result["accepted"] and not already:
                    raise MedchainError(f"the node refused a {what} transaction: {result['error']}")
            waiting = {tx_id(t) for t in chunk}
            deadline = time.monotonic() + timeout_s
            while waiting:
                if time.monotonic() > deadline:
                    raise MedchainError(
                        f"{len(waiting)} {what} transactions not committed in {timeout_s:g} s; "
                        "is the chain making blocks? (`medchain status`)"
                    )
                for tx_hash in list(waiting):
                    status = chain.tx_status(tx_hash)
                    if status.status == "committed":
                        waiting.discard(tx_hash)
                        if status.receipt is not None and not status.receipt.ok:
                            raise MedchainError(
                                f"a {what} transaction failed on chain: {status.receipt.message}"
                            )
                if waiting:
                    time.sleep(0.2)


def enrol_fleet(
    chain: HttpChain,
    owner: AccountKeys,
    count: int,
    misbehave: int,
    *,
    seed: int = 0,
    per_patient: int = 1,
) -> list[SimulatedDevice]:
    """`count` devices on chain, the last `misbehave` of them misbehaving. A hospital key
    gets one new (or reused) patient per `per_patient` devices, each of a different kind
    where it can (a band, an oximeter, a thermometer, a cuff, a fall detector); a patient
    key gets every device itself. Only what the chain lacks is registered, in batched
    transactions."""
    if not 1 <= per_patient <= MAX_DEVICES_PER_PATIENT:
        raise MedchainError(
            f"a patient has 1 to {MAX_DEVICES_PER_PATIENT} devices, not {per_patient}"
        )
    identity = chain.identity(owner.address)
    if identity is None or identity.role not in (Role.INSTITUTION, Role.PATIENT):
        raise MedchainError(
            f"{owner.address_text} must be a registered hospital (institution) or patient "
            "to register devices"
        )
    hospital = identity.role is Role.INSTITUTION
    patients = [patient_keys(seed, i // per_patient) if hospital else owner for i in range(count)]
    fee = chain.params.min_fee
    new_patients = [p for p in {p.address: p for p in patients}.values() if hospital]
    new_patients = [p for p in new_patients if chain.identity(p.address) is None]
    if new_patients:
        nonce = chain.account(owner.address).nonce
        if fee:  # each patient pays for its own registration
            funding = [
                signed_tx(
                    owner,
                    chain.chain_id,
                    nonce + i,
                    "accounts.transfer",
                    TransferArgs(p.address, fee, "simulated patient"),
                    fee,
                )
                for i, p in enumerate(new_patients)
            ]
            _send_all(chain, funding, "patient funding")
        registrations = []
        for i, p in enumerate(new_patients):
            profile = MedchainClient(p, chain)._seal_profile({"name": f"simulated patient {i}"})
            args = RegisterArgs(
                Role.PATIENT, "", p.encryption_public_key, profile, p.ring_public_key
            )
            registrations.append(signed_tx(p, chain.chain_id, 0, "registry.register", args, fee))
        _send_all(chain, registrations, "patient registration")
    kinds = list(_KINDS)
    now_ms = time.time_ns() // 1_000_000  # readings carry the time they are taken
    devices: list[SimulatedDevice] = []
    for i, p in enumerate(patients):
        kind = kinds[(i % per_patient if per_patient > 1 else i) % len(kinds)]
        name = format_address(p.address)
        if i >= count - misbehave:
            mode = MODES[(i - (count - misbehave)) % len(MODES)]
            devices.append(
                MisbehavingDevice(kind, name, mode, honest_first=1, seed=seed + i, start_ms=now_ms)
            )
        else:
            devices.append(SimulatedDevice(kind, name, seed=seed + i, start_ms=now_ms))
    missing = [(d, p) for d, p in zip(devices, patients, strict=True) if not _on_chain(chain, d)]
    nonce = chain.account(owner.address).nonce
    txs = []
    for j, (d, p) in enumerate(missing):
        proof = d.keys.sign(registration_message(chain.chain_id, p.address))
        args2 = RegisterDeviceArgs(
            d.keys.public_key, p.address, _KINDS[d.kind], f"simulated {d.kind.value}", proof
        )
        txs.append(signed_tx(owner, chain.chain_id, nonce + j, "devices.register", args2, fee))
    _send_all(chain, txs, "device registration")
    return devices


def _on_chain(chain: ChainBackend, device: SimulatedDevice) -> bool:
    return chain.device(device.keys.address) is not None


__all__ = ["MODES", "enrol_fleet", "patient_keys"]
