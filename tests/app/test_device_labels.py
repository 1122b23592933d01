"""What the chain accepts as a device label: sealed in shape, for exactly the patient and
their guardians; anything in clear is refused."""

from __future__ import annotations

import pytest

from medchain.app import (
    LABEL_BLOCK_BYTES,
    MAX_LABEL_CHARS,
    MAX_SEALED_LABEL_BYTES,
    KeyWrap,
    KeyWrapMismatch,
    LabelNotSealed,
    SealedLabel,
    sealed_label,
)
from medchain.app._device_labels import check_label
from medchain.crypto import CONTENT_OVERHEAD, WRAPPED_KEY_SIZE, format_address
from medchain.types import DecodeError, encode

from .conftest import fake_label, fake_wraps

PATIENT = b"\x05" * 20
GUARDIAN = b"\x09" * 20
OTHER = b"\x01" * 20


def test_no_label_and_a_sealed_one_pass() -> None:
    check_label(b"", PATIENT, ())
    check_label(fake_label(PATIENT), PATIENT, ())
    check_label(fake_label(PATIENT, GUARDIAN), PATIENT, (GUARDIAN,))
    longest = MAX_SEALED_LABEL_BYTES // LABEL_BLOCK_BYTES
    check_label(fake_label(PATIENT, blocks=longest), PATIENT, ())


def test_the_longest_label_fits() -> None:
    # every character of a MAX_LABEL_CHARS label 4 bytes of UTF-8, plus the pad marker
    assert 4 * MAX_LABEL_CHARS + 1 <= MAX_SEALED_LABEL_BYTES


@pytest.mark.parametrize(
    "text", ["insulin pump, Jane", "x", "Jänë's pump 💉", "a" * MAX_LABEL_CHARS]
)
def test_a_label_in_clear_is_refused(text: str) -> None:
    with pytest.raises(LabelNotSealed, match="never stored in clear"):
        check_label(text.encode(), PATIENT, ())


@pytest.mark.parametrize(
    "size",
    [
        0,
        CONTENT_OVERHEAD,  # nothing sealed
        CONTENT_OVERHEAD + LABEL_BLOCK_BYTES - 1,  # not padded to a block
        CONTENT_OVERHEAD + MAX_SEALED_LABEL_BYTES + LABEL_BLOCK_BYTES,  # too long
    ],
)
def test_a_ciphertext_of_the_wrong_size_is_refused(size: int) -> None:
    label = encode(SealedLabel(b"\x02" * size, fake_wraps(PATIENT)))
    with pytest.raises(LabelNotSealed, match="padded to a multiple"):
        check_label(label, PATIENT, ())


def test_a_wrapped_key_of_the_wrong_size_is_refused() -> None:
    ciphertext = b"\x02" * (CONTENT_OVERHEAD + LABEL_BLOCK_BYTES)
    short = encode(SealedLabel(ciphertext, (KeyWrap(PATIENT, b"\x01" * (WRAPPED_KEY_SIZE - 1)),)))
    with pytest.raises(LabelNotSealed, match=f"a wrapped key is {WRAPPED_KEY_SIZE} bytes"):
        check_label(short, PATIENT, ())


def test_readers_are_exactly_the_patient_and_guardians() -> None:
    with pytest.raises(KeyWrapMismatch, match=f"missing: {format_address(GUARDIAN)}"):
        check_label(fake_label(PATIENT), PATIENT, (GUARDIAN,))
    with pytest.raises(KeyWrapMismatch, match=f"missing: {format_address(PATIENT)}"):
        check_label(fake_label(GUARDIAN), PATIENT, (GUARDIAN,))
    with pytest.raises(
        KeyWrapMismatch, match=f"not the patient or a guardian: {format_address(OTHER)}"
    ):
        check_label(fake_label(PATIENT, OTHER), PATIENT, ())
    ciphertext = b"\x02" * (CONTENT_OVERHEAD + LABEL_BLOCK_BYTES)
    unsorted = tuple(reversed(fake_wraps(PATIENT, GUARDIAN)))
    twice = fake_wraps(PATIENT) * 2
    for wraps in (unsorted, twice, ()):
        with pytest.raises(KeyWrapMismatch, match="once each, sorted"):
            check_label(encode(SealedLabel(ciphertext, wraps)), PATIENT, (GUARDIAN,))


def test_sealed_label_reads_what_a_device_stores() -> None:
    assert sealed_label(b"") is None
    label = sealed_label(fake_label(PATIENT, GUARDIAN))
    assert label is not None and label.readers == (PATIENT, GUARDIAN)
    # a label an earlier medchain stored in clear is no sealed label
    with pytest.raises(DecodeError):
        sealed_label(b"bedroom oximeter")
