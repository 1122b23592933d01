"""Device labels, sealed and opened on the user's side.

A label is sealed like a patient's profile and a record (`_envelope.seal`: a fresh
AES-256-GCM key, wrapped with HPKE for each reader), for the patient and each of
their guardians, bound to the device: a sealed label copied onto another device does
not open. Its text is padded first (ISO/IEC 7816-4: a 0x80 byte, then zeros, to a
multiple of `LABEL_BLOCK_BYTES`) so the ciphertext's size says little about it. What
the chain checks is in `medchain.app`'s `_device_labels`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from medchain.app import (
    LABEL_BLOCK_BYTES,
    MAX_LABEL_CHARS,
    Device,
    KeyWrap,
    SealedLabel,
    sealed_label,
)
from medchain.client._envelope import open_sealed, seal
from medchain.crypto import AccountKeys, DecryptionFailed
from medchain.types import DecodeError, MedchainError, encode

_PAD_MARKER = 0x80


class InvalidLabel(MedchainError):
    code = "invalid_label"


class LabelStatus(enum.StrEnum):
    NONE = "none"
    """The device has no label."""
    OPENED = "opened"
    """Sealed, and sealed for this account: `text` holds it."""
    SEALED = "sealed"
    """Sealed for others (the patient and their guardians of when it was written)."""
    IN_CLEAR = "in_clear"
    """Stored in clear by an earlier medchain, before labels were sealed: `text` holds
    it, as anyone can read it; `relabel_device` seals it."""
    DAMAGED = "damaged"
    """Sealed for this account, but it does not open: altered, or written for another
    device. Relabel the device."""


@dataclass(frozen=True, slots=True)
class DeviceLabel:
    status: LabelStatus
    text: str
    """The label, if this account can read it (OPENED, IN_CLEAR); '' otherwise."""
    readers: tuple[bytes, ...]
    """Whom it is sealed for; empty when there is no label or it is in clear."""


def label_context(device: bytes) -> bytes:
    return b"medchain/device-label/v1\x00" + device


def check_label_text(text: str) -> str:
    """The label as it will be sealed (trimmed), or InvalidLabel saying what to fix."""
    trimmed = text.strip()
    if not trimmed:
        raise InvalidLabel("give the label: it may not be empty")
    if len(trimmed) > MAX_LABEL_CHARS:
        raise InvalidLabel(
            f"a device label is at most {MAX_LABEL_CHARS} characters; this one has "
            f"{len(trimmed)}: shorten it"
        )
    return trimmed


def seal_label(text: str, device: bytes, readers: Mapping[bytes, bytes]) -> bytes:
    """`text` sealed for `readers` (address -> X25519 public key, the patient and each
    guardian), bound to `device`: the bytes `devices.register`/`relabel` take."""
    plain = check_label_text(text).encode()
    zeros = -(len(plain) + 1) % LABEL_BLOCK_BYTES
    padded = plain + bytes([_PAD_MARKER]) + bytes(zeros)
    sealed = seal(padded, label_context(device), readers)
    return encode(SealedLabel(sealed.ciphertext, sealed.wraps))


def read_label(device: Device, keys: AccountKeys | None) -> DeviceLabel:
    """What `keys` (None: a stranger) can tell of the device's label."""
    try:
        label = sealed_label(device.label)
    except DecodeError:
        text = device.label.decode("utf-8", errors="replace")
        return DeviceLabel(LabelStatus.IN_CLEAR, text, ())
    if label is None:
        return DeviceLabel(LabelStatus.NONE, "", ())
    wrap = _wrap_for(label.wraps, keys)
    if keys is None or wrap is None:
        return DeviceLabel(LabelStatus.SEALED, "", label.readers)
    try:
        padded = open_sealed(keys, wrap, label.ciphertext, label_context(device.device))
        text = _unpad(padded)
    except (DecryptionFailed, InvalidLabel):
        return DeviceLabel(LabelStatus.DAMAGED, "", label.readers)
    return DeviceLabel(LabelStatus.OPENED, text, label.readers)


def _wrap_for(wraps: tuple[KeyWrap, ...], keys: AccountKeys | None) -> bytes | None:
    if keys is None:
        return None
    return next((w.wrapped_key for w in wraps if w.reader == keys.address), None)


def _unpad(padded: bytes) -> str:
    plain = padded.rstrip(b"\x00")
    if not plain or plain[-1] != _PAD_MARKER:
        raise InvalidLabel("the sealed label is not padded as a label is")
    try:
        return plain[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidLabel("the sealed label is not UTF-8 text") from None
