"""Device labels as the chain holds them: sealed to the patient and their guardians.

A label is what people call a device ("insulin pump, left arm"). Whoever writes it
(the patient, a guardian, a hospital) easily names or describes the patient in it, and
every node serves the devices contract to anyone, so a label never sits on chain in
clear: the client encrypts it as it encrypts a patient's profile and a record (a fresh
AES-256-GCM key wrapped for each reader with HPKE, `medchain.client` `seal`), for the
patient and each guardian, and the chain keeps the ciphertext and the wrapped keys.

The contract cannot tell ciphertext from text, but it refuses what is not shaped like
a sealed label (a label in clear never is) and a label whose keys are not wrapped for
exactly the patient and their guardians: a careless client cannot leave a label in
clear, nor out of its owners' reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medchain.app._errors import ContractError, KeyWrapMismatch
from medchain.app._keywrap import KeyWrap
from medchain.crypto import CONTENT_OVERHEAD, WRAPPED_KEY_SIZE, format_address
from medchain.types import DecodeError, decode

MAX_LABEL_CHARS = 64
"""Longest label (in characters) the SDK seals; gateways' public labels too."""

LABEL_BLOCK_BYTES = 64
"""A label's UTF-8 is padded to a multiple of this before it is sealed, so that its
ciphertext says little about its length: every label of up to 63 bytes seals to the
same size."""

MAX_SEALED_LABEL_BYTES = (4 * MAX_LABEL_CHARS // LABEL_BLOCK_BYTES + 1) * LABEL_BLOCK_BYTES
"""Largest padded label: MAX_LABEL_CHARS characters of up to 4 bytes of UTF-8, plus
the padding's marker byte, rounded up to a block."""


class LabelNotSealed(ContractError):
    """A device label given in clear, or in a shape no sealed label has."""

    code = "label_not_sealed"


@dataclass(frozen=True, slots=True)
class SealedLabel:
    """A device label: its padded text encrypted under a fresh content key, and that key
    wrapped for the patient and each of their guardians of when it was written."""

    ciphertext: bytes
    wraps: tuple[KeyWrap, ...]
    """Sorted by reader address."""

    @property
    def readers(self) -> tuple[bytes, ...]:
        return tuple(w.reader for w in self.wraps)


def sealed_label(stored: bytes) -> SealedLabel | None:
    """The sealed label a device stores as `stored`, None if it has no label. Raises
    DecodeError for bytes that are no sealed label: a label an earlier medchain stored
    in clear (see docs/DEPLOY.md)."""
    return decode(SealedLabel, stored) if stored else None


def check_label(stored: bytes, patient: bytes, guardians: Iterable[bytes]) -> None:
    """Refuse a label that is not sealed, or not for exactly the patient and their
    current `guardians`. No label (empty) is allowed."""
    if not stored:
        return
    try:
        label = decode(SealedLabel, stored)
    except DecodeError:
        raise LabelNotSealed(
            "a device label is never stored in clear: seal it to the patient and their "
            "guardians (the SDK's register_device and relabel_device do; `medchain devices "
            "register --label`)"
        ) from None
    padded = len(label.ciphertext) - CONTENT_OVERHEAD
    if padded <= 0 or padded % LABEL_BLOCK_BYTES or padded > MAX_SEALED_LABEL_BYTES:
        raise LabelNotSealed(
            f"a sealed label's ciphertext is {CONTENT_OVERHEAD} bytes and the label padded to "
            f"a multiple of {LABEL_BLOCK_BYTES} bytes, at most {MAX_SEALED_LABEL_BYTES}; got "
            f"{len(label.ciphertext)} bytes: seal the label with the SDK"
        )
    for wrap in label.wraps:
        if len(wrap.wrapped_key) != WRAPPED_KEY_SIZE:
            raise LabelNotSealed(
                f"a wrapped key is {WRAPPED_KEY_SIZE} bytes (HPKE X25519 + AES-256-GCM); "
                f"got {len(wrap.wrapped_key)} for {format_address(wrap.reader)}"
            )
    expected = sorted({patient, *guardians})
    readers = list(label.readers)
    if readers != expected:
        missing = ", ".join(format_address(a) for a in expected if a not in readers)
        extra = ", ".join(format_address(a) for a in sorted(set(readers) - set(expected)))
        raise KeyWrapMismatch(
            "a device label is sealed for exactly the patient and their guardians, once "
            "each, sorted by address"
            + (f"; missing: {missing}" if missing else "")
            + (f"; not the patient or a guardian: {extra}" if extra else "")
            + " — read the patient's guardians again and seal the label for them"
        )
