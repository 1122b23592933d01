"""Account keys: Ed25519 against RFC 8032's known answers, and the key pair's hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medchain.crypto import AccountKeys, verify_signature

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc8032_ed25519.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_rfc8032_known_answers(vector: dict[str, str]) -> None:
    keys = AccountKeys(bytes.fromhex(vector["secret_key"]), b"\x01" * 32)
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])
    assert keys.public_key.hex() == vector["public_key"]
    assert keys.sign(message) == signature
    assert verify_signature(keys.public_key, message, signature)


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=63), st.integers(1, 255))
def test_any_changed_signature_byte_fails(message: bytes, index: int, flip: int) -> None:
    keys = AccountKeys.generate()
    signature = bytearray(keys.sign(message))
    signature[index] ^= flip
    assert not verify_signature(keys.public_key, message, bytes(signature))


def test_verify_never_raises_on_garbage() -> None:
    assert not verify_signature(b"\x00" * 32, b"m", b"\x00" * 64)
    assert not verify_signature(b"short", b"m", b"\x00" * 64)
    assert not verify_signature(b"\x01" * 32, b"m", b"short")


def test_repr_hides_secrets() -> None:
    keys = AccountKeys.generate()
    shown = repr(keys) + str(keys)
    assert keys.signing_seed.hex() not in shown and keys.encryption_secret.hex() not in shown
    assert keys.address_text in shown


def test_signing_and_encryption_keys_are_independent() -> None:
    keys = AccountKeys.generate()
    assert keys.public_key != keys.encryption_public_key
    assert keys.signing_seed != keys.encryption_secret
