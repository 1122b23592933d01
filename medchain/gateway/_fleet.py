"""Enrolling a simulated fleet on chain for `medchain devices simulate`, the gateway's
tests and its benchmark: patients (derived from a seed, so a rerun reuses them) and
their devices, registered in batched transactions, only what the chain still lacks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

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
from medchain.client import HttpChain, MedchainClient, seal_label
from medchain.crypto import (
    AccountKeys,
    address_from_public_key,
    format_address,
    signed_tx,
    tagged_hash,
)
from medchain.gateway._simulate import (
    DeviceKind,
    MisbehavingDevice,
    Misbehaviour,
    SimulatedDevice,
)
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


_BATCH = 500
"""Transactions a POST /v1/txs/batch carries (the API takes up to 1,000)."""
_PER_SENDER = 256
"""Pending transactions of one sender a node's mempool holds (its default)."""
_RETRY = ("sender_queue_full", "mempool_full")
"""Refusals that only mean "not now": the transaction is sent again once blocks drain."""
_POLL_S = 0.05


@dataclass
class _Sender:
    """One sender's transactions, in nonce order (consecutive), and how far they got."""

    address: bytes
    txs: list[Tx]
    sent: int = 0
    """txs[:sent] are pending or committed."""
    committed: int = 0
    """txs[:committed] are committed."""

    @property
    def done(self) -> bool:
        return self.committed == len(self.txs)


def _send_all(chain: HttpChain, txs: Sequence[Tx], what: str, timeout_s: float = 60.0) -> None:
    """Submit `txs` and wait until all are committed; a refusal or a failed call is an
    error naming it. The transactions of distinct senders go out together, in requests of
    `_BATCH`; one sender's go in nonce order, at most `_PER_SENDER` pending at once (a
    node's limit per sender), topped up as blocks take them. A sender's progress is its
    account's nonce, or, once only its last transaction is pending, that transaction's
    status. The receipt of each sender's last transaction is checked (each of them when
    every sender has one, as the patients' registrations); a sender's earlier ones are not
    read, so a caller sending many from one account checks their effect (`enrol_fleet`
    looks its devices up). Errors when nothing moves for `timeout_s`."""
    by_sender: dict[bytes, list[Tx]] = {}
    for tx in txs:
        by_sender.setdefault(tx.sender, []).append(tx)
    senders = [
        _Sender(address_from_public_key(key), sorted(group, key=lambda t: t.nonce))
        for key, group in by_sender.items()
    ]
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=chain.url, timeout=30.0) as http:
        while not all(s.done for s in senders):
            submitted = _submit(http, senders, what)
            moved = _poll(chain, senders, what)  # and straight back to top them up
            if submitted or moved:
                deadline = time.monotonic() + timeout_s
            elif time.monotonic() > deadline:
                left = sum(len(s.txs) - s.committed for s in senders)
                raise MedchainError(
                    f"{left} {what} transactions not committed in {timeout_s:g} s; "
                    "is the chain making blocks? (`medchain status`)"
                )
            if not moved and not all(s.done for s in senders):
                time.sleep(_POLL_S)


def _submit(http: httpx.Client, senders: Sequence[_Sender], what: str) -> bool:
    """Send what each sender may have pending now; True if any was taken."""
    window = [(s, tx) for s in senders for tx in s.txs[s.sent : s.committed + _PER_SENDER]]
    progress = False
    held: set[bytes] = set()  # senders with a transaction to send again: not their rest
    for start in range(0, len(window), _BATCH):
        chunk = window[start : start + _BATCH]
        response = http.post("/v1/txs/batch", json={"txs": [t.encoded.hex() for _, t in chunk]})
        if response.status_code != 200:
            raise MedchainError(
                f"the node refused the {what}: {response.status_code} {response.text[:200]}"
            )
        for (sender, _), result in zip(chunk, response.json()["results"], strict=True):
            code = (result.get("error") or {}).get("code")
            if sender.address in held:
                continue  # its later nonces were refused for the gap: sent again too
            if result["accepted"] or code in ("already_pending", "already_committed"):
                sender.sent += 1
                progress = True
            elif code in _RETRY:
                held.add(sender.address)
            else:
                raise MedchainError(f"the node refused a {what} transaction: {result['error']}")
    return progress


def _poll(chain: HttpChain, senders: Sequence[_Sender], what: str) -> bool:
    """Read the progress of each sender with transactions pending; True if any moved. A
    sender's last transaction is read by its status, with the receipt. The node takes
    pending transactions in arrival order, so a round stops at the first last transaction
    still pending: those sent after it are likely pending too."""
    progress = False
    for s in senders:
        if s.done or s.sent == s.committed:
            continue
        last = len(s.txs) - 1
        if s.committed < last:  # more than its last to go: its nonce says how far
            nonce = chain.account(s.address).nonce
            committed = min(s.sent, last, nonce - s.txs[0].nonce)
            if committed > s.committed:
                s.committed, progress = committed, True
            if s.committed < last or s.sent == last:
                continue
        status = chain.tx_status(tx_id(s.txs[last]))
        if status.status != "committed":
            break
        if status.receipt is not None and not status.receipt.ok:
            raise MedchainError(f"a {what} transaction failed on chain: {status.receipt.message}")
        s.committed, progress = len(s.txs), True
    return progress


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
    (an admin of a member organisation) gets one new (or reused) patient per `per_patient`
    devices, each of a different kind
    where it can (a band, an oximeter, a thermometer, a cuff, a fall detector); a patient
    key gets every device itself. Only what the chain lacks is registered, in batched
    transactions."""
    if not 1 <= per_patient <= MAX_DEVICES_PER_PATIENT:
        raise MedchainError(
            f"a patient has 1 to {MAX_DEVICES_PER_PATIENT} devices, not {per_patient}"
        )
    identity = chain.identity(owner.address)
    hospital = _is_admin(chain, owner.address)
    if not hospital and (identity is None or identity.role is not Role.PATIENT):
        raise MedchainError(
            f"{owner.address_text} must be an admin of a member organisation (a hospital's "
            "key) or a registered patient to register devices"
        )
    if not hospital and per_patient != 1:
        raise MedchainError(
            "devices per patient go with a hospital's key: a patient's key registers every "
            "device to the patient"
        )
    patients = [patient_keys(seed, i // per_patient) if hospital else owner for i in range(count)]
    if hospital:
        _register_patients(chain, owner, patients)
    devices = _simulated_devices(patients, count, misbehave, seed, per_patient)
    _register_devices(chain, owner, devices, patients)
    return devices


def _is_admin(chain: HttpChain, address: bytes) -> bool:
    """Whether `address` is an admin of a member organisation of the consortium."""
    return any(org.member and address in org.admins for org in chain.organisations())


def _register_patients(
    chain: HttpChain, hospital: AccountKeys, patients: Sequence[AccountKeys]
) -> None:
    """Register the simulated patients the chain does not know yet, each funded by the
    hospital for its registration's fee."""
    fee = chain.params.min_fee
    unique = {p.address: p for p in patients}.values()
    new_patients = [p for p in unique if chain.identity(p.address) is None]
    if not new_patients:
        return
    nonce = chain.account(hospital.address).nonce
    if fee:  # each patient pays for its own registration
        funding = [
            signed_tx(
                hospital,
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
        args = RegisterArgs(Role.PATIENT, "", p.encryption_public_key, profile, p.ring_public_key)
        registrations.append(signed_tx(p, chain.chain_id, 0, "registry.register", args, fee))
    _send_all(chain, registrations, "patient registration")


def _simulated_devices(
    patients: Sequence[AccountKeys], count: int, misbehave: int, seed: int, per_patient: int
) -> list[SimulatedDevice]:
    """One simulated device per entry of `patients`, the last `misbehave` misbehaving."""
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
    return devices


def _register_devices(
    chain: HttpChain,
    owner: AccountKeys,
    devices: Sequence[SimulatedDevice],
    patients: Sequence[AccountKeys],
) -> None:
    """Register the devices the chain lacks, then check each of them is there (one
    sender's receipts are not all read)."""
    fee = chain.params.min_fee
    _, found = chain.devices([d.keys.address for d in devices])  # one lookup a 1,000
    missing = [(d, p) for d, p, on in zip(devices, patients, found, strict=True) if on is None]
    nonce = chain.account(owner.address).nonce
    txs = []
    readers = _label_readers(chain, [p for _, p in missing])
    for j, (d, p) in enumerate(missing):
        proof = d.keys.sign(registration_message(chain.chain_id, p.address))
        label = seal_label(f"simulated {d.kind.value}", d.keys.address, readers[p.address])
        args = RegisterDeviceArgs(d.keys.public_key, p.address, _KINDS[d.kind], label, proof)
        txs.append(signed_tx(owner, chain.chain_id, nonce + j, "devices.register", args, fee))
    _send_all(chain, txs, "device registration")
    if not missing:
        return
    _, found = chain.devices([d.keys.address for d, _ in missing])
    for tx, on in zip(txs, found, strict=True):
        if on is None:
            receipt = chain.tx_status(tx_id(tx)).receipt
            why = receipt.message if receipt is not None else "no receipt"
            raise MedchainError(f"a device registration transaction failed on chain: {why}")


def _label_readers(
    chain: HttpChain, patients: Sequence[AccountKeys]
) -> dict[bytes, dict[bytes, bytes]]:
    """Per patient, whom a device label is sealed for: the patient (whose key is at
    hand) and their guardians, if any (a simulated patient has none unless one was
    added since an earlier run)."""
    found: dict[bytes, dict[bytes, bytes]] = {}
    for p in patients:
        if p.address in found:
            continue
        readers = {p.address: p.encryption_public_key}
        for guardian in chain.guardians_of(p.address):
            identity = chain.identity(guardian)
            if identity is not None:
                readers[guardian] = identity.encryption_key
        found[p.address] = readers
    return found


__all__ = ["MODES", "enrol_fleet", "patient_keys"]
