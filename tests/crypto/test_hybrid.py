from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from medchain.crypto import (
    CONTENT_KEY_SIZE,
    WRAPPED_KEY_SIZE,
    AccountKeys,
    DecryptionFailed,
    InvalidKey,
    decrypt_content,
    encrypt_content,
    new_content_key,
    unwrap_key,
    wrap_key,
)
from medchain.crypto._hybrid import _SUITE
from medchain.types import MedchainError

# Single-shot HPKE with associated data: private in cryptography, used only to check
# the RFC vectors (whose messages carry aad).
_decrypt_with_aad = rust_openssl.hpke._decrypt_with_aad

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc9180_x25519_sha256.json").read_text()
)
AEADS = {1: hpke.AEAD.AES_128_GCM, 2: hpke.AEAD.AES_256_GCM}
INFO = b"record:7f3a/version:2"
AAD = b"record:7f3a/version:2"


def raw_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def flip(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0x01
    return bytes(out)


# --- RFC 9180 known answers ----------------------------------------------------------


def test_vector_file_holds_both_base_mode_x25519_suites() -> None:
    assert sorted(v["aead_id"] for v in VECTORS) == [1, 2]
    for v in VECTORS:
        assert (v["mode"], v["kem_id"], v["kdf_id"]) == (0, 32, 1)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"aead{v['aead_id']}")
def test_rfc9180_recipient_key_derivation(vector: dict[str, Any]) -> None:
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["skRm"]))
    assert raw_public(private).hex() == vector["pkRm"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"aead{v['aead_id']}")
def test_rfc9180_first_encryption_decrypts(vector: dict[str, Any]) -> None:
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, AEADS[vector["aead_id"]])
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["skRm"]))
    first = vector["encryptions"][0]
    assert first["nonce"] == vector["base_nonce"]  # sequence number 0
    message = bytes.fromhex(vector["enc"]) + bytes.fromhex(first["ct"])
    info, aad = bytes.fromhex(vector["info"]), bytes.fromhex(first["aad"])
    assert _decrypt_with_aad(suite, message, private, info, aad) == bytes.fromhex(first["pt"])
    with pytest.raises(InvalidTag):
        _decrypt_with_aad(suite, message, private, info, aad + b"!")


def test_wrapping_suite_is_the_rfc9180_aes256_suite() -> None:
    # The AES-256-GCM vector opens with the exact suite object wrap_key uses.
    (vector,) = [v for v in VECTORS if v["aead_id"] == 2]
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["skRm"]))
    first = vector["encryptions"][0]
    message = bytes.fromhex(vector["enc"]) + bytes.fromhex(first["ct"])
    opened = _decrypt_with_aad(
        _SUITE, message, private, bytes.fromhex(vector["info"]), bytes.fromhex(first["aad"])
    )
    assert opened == bytes.fromhex(first["pt"])


# --- content encryption -------------------------------------------------------------


def test_new_content_keys_are_fresh_and_sized() -> None:
    keys = {new_content_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == CONTENT_KEY_SIZE for k in keys)


@given(plaintext=st.binary(max_size=2000), aad=st.binary(max_size=64))
def test_content_round_trip(plaintext: bytes, aad: bytes) -> None:
    key = new_content_key()
    blob = encrypt_content(key, plaintext, aad)
    assert decrypt_content(key, blob, aad) == plaintext


def test_blob_layout_is_version_nonce_ciphertext_tag() -> None:
    key = new_content_key()
    blob = encrypt_content(key, b"heart rate 72", AAD)
    assert blob[0] == 1
    assert len(blob) == 1 + 12 + len(b"heart rate 72") + 16
    assert b"heart rate 72" not in blob


def test_same_plaintext_encrypts_differently_each_time() -> None:
    key = new_content_key()
    assert encrypt_content(key, b"same", AAD) != encrypt_content(key, b"same", AAD)


def test_wrong_content_key_fails() -> None:
    blob = encrypt_content(new_content_key(), b"diagnosis", AAD)
    with pytest.raises(DecryptionFailed) as caught:
        decrypt_content(new_content_key(), blob, AAD)
    assert caught.value.code == "decryption_failed"
    assert isinstance(caught.value, MedchainError)


def test_wrong_associated_data_fails() -> None:
    key = new_content_key()
    blob = encrypt_content(key, b"diagnosis", b"record:1/version:1")
    with pytest.raises(DecryptionFailed):
        decrypt_content(key, blob, b"record:1/version:2")


def test_every_tampered_byte_of_a_blob_is_detected() -> None:
    key = new_content_key()
    blob = encrypt_content(key, b"allergy: penicillin", AAD)
    for position in range(len(blob)):
        with pytest.raises(DecryptionFailed):
            decrypt_content(key, flip(blob, position), AAD)


def test_truncated_or_unknown_version_blob_fails_with_reason() -> None:
    key = new_content_key()
    blob = encrypt_content(key, b"x", AAD)
    with pytest.raises(DecryptionFailed, match="truncated"):
        decrypt_content(key, blob[:20], AAD)
    with pytest.raises(DecryptionFailed, match="format version 2"):
        decrypt_content(key, b"\x02" + blob[1:], AAD)


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_content_key_of_wrong_size_is_refused(size: int) -> None:
    with pytest.raises(InvalidKey, match=f"content key is 32 bytes, got {size} bytes"):
        encrypt_content(bytes(size), b"x", AAD)
    with pytest.raises(InvalidKey):
        decrypt_content(bytes(size), bytes(40), AAD)
    with pytest.raises(InvalidKey):
        wrap_key(bytes(size), raw_public(X25519PrivateKey.generate()), INFO)


# --- key wrapping -------------------------------------------------------------------


def test_wrap_round_trip_for_several_readers() -> None:
    content_key = new_content_key()
    readers = [AccountKeys.generate() for _ in range(3)]
    wraps = [wrap_key(content_key, r.encryption_public_key, INFO) for r in readers]
    assert len(set(wraps)) == 3
    for reader, wrapped in zip(readers, wraps, strict=True):
        assert len(wrapped) == WRAPPED_KEY_SIZE
        assert unwrap_key(wrapped, reader.encryption_private_key, INFO) == content_key


def test_whole_record_flow() -> None:
    owner, doctor = AccountKeys.generate(), AccountKeys.generate()
    content_key = new_content_key()
    blob = encrypt_content(content_key, b'{"resourceType": "Observation"}', AAD)
    wrapped = wrap_key(content_key, doctor.encryption_public_key, INFO)
    opened_key = unwrap_key(wrapped, doctor.encryption_private_key, INFO)
    assert decrypt_content(opened_key, blob, AAD) == b'{"resourceType": "Observation"}'
    with pytest.raises(DecryptionFailed, match="not an authorised reader"):
        unwrap_key(wrapped, owner.encryption_private_key, INFO)


def test_strangers_key_cannot_unwrap() -> None:
    wrapped = wrap_key(new_content_key(), raw_public(X25519PrivateKey.generate()), INFO)
    with pytest.raises(DecryptionFailed) as caught:
        unwrap_key(wrapped, X25519PrivateKey.generate(), INFO)
    assert "not an authorised reader" in str(caught.value)


def test_wrap_for_another_context_does_not_open() -> None:
    reader = X25519PrivateKey.generate()
    wrapped = wrap_key(new_content_key(), raw_public(reader), b"record:7f3a/version:1")
    with pytest.raises(DecryptionFailed):
        unwrap_key(wrapped, reader, b"record:7f3a/version:2")
    with pytest.raises(DecryptionFailed):
        unwrap_key(wrapped, reader, b"")


def test_every_tampered_byte_of_a_wrap_is_detected() -> None:
    reader = X25519PrivateKey.generate()
    wrapped = wrap_key(new_content_key(), raw_public(reader), INFO)
    for position in range(len(wrapped)):
        with pytest.raises(DecryptionFailed):
            unwrap_key(flip(wrapped, position), reader, INFO)


def test_wrap_of_wrong_length_or_low_order_point_fails_cleanly() -> None:
    reader = X25519PrivateKey.generate()
    wrapped = wrap_key(new_content_key(), raw_public(reader), INFO)
    for bad in (b"", wrapped[:-1], wrapped + b"\x00"):
        with pytest.raises(DecryptionFailed, match="wrapped key is 80 bytes"):
            unwrap_key(bad, reader, INFO)
    with pytest.raises(DecryptionFailed):
        unwrap_key(bytes(32) + wrapped[32:], reader, INFO)


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_recipient_public_key_of_wrong_size_is_refused(size: int) -> None:
    with pytest.raises(InvalidKey, match="32-byte X25519 public key"):
        wrap_key(new_content_key(), bytes(size), INFO)


def test_low_order_recipient_key_is_refused() -> None:
    with pytest.raises(InvalidKey, match="low-order"):
        wrap_key(new_content_key(), bytes(32), INFO)


def test_unwrap_needs_an_x25519_private_key() -> None:
    wrapped = wrap_key(new_content_key(), raw_public(X25519PrivateKey.generate()), INFO)
    with pytest.raises(InvalidKey, match="encryption_private_key"):
        unwrap_key(wrapped, bytes(32), INFO)  # type: ignore[arg-type]


def test_errors_never_carry_key_material() -> None:
    reader = X25519PrivateKey.generate()
    content_key = new_content_key()
    wrapped = wrap_key(content_key, raw_public(reader), INFO)
    with pytest.raises(DecryptionFailed) as caught:
        unwrap_key(wrapped, X25519PrivateKey.generate(), INFO)
    text = str(caught.value) + repr(caught.value)
    assert content_key.hex() not in text
    assert reader.private_bytes_raw().hex() not in text
