"""Identifiers from paths and bodies: what is accepted and what the refusal says."""

from __future__ import annotations

import pytest

from medchain.api import ApiError
from medchain.api._parse import address, hex_bytes, record_id, transaction, tx_hash
from medchain.app import MalformedTx, TxTooLarge
from medchain.crypto import AccountKeys
from medchain.types import ChainParams
from tests.api.harness import signed


def test_hex() -> None:
    assert hex_bytes("00ff", "x") == b"\x00\xff"
    assert hex_bytes("0xABcd", "x") == b"\xab\xcd"
    for bad in ("0g", "abc", "ab cd", "", "0x", "١٢", "ab\n"):
        with pytest.raises(ApiError) as refused:
            hex_bytes(bad, "the thing")
        assert refused.value.status_code == 400 and refused.value.code == "invalid_hex"
        assert "the thing must be hex" in refused.value.message


def test_sized_hex_says_the_size() -> None:
    assert len(record_id("ab" * 16)) == 16 and len(tx_hash("cd" * 32)) == 32
    with pytest.raises(ApiError, match="32 hex characters"):
        record_id("ab" * 15)
    with pytest.raises(ApiError, match=r"64 hex characters \(32 bytes\), got 2 bytes"):
        tx_hash("abcd")
    with pytest.raises(ApiError, match="'" + "a" * 37 + r"\.\.\.'"):
        tx_hash("a" * 39 + "z" * 20)


def test_address() -> None:
    keys = AccountKeys.generate()
    assert address(keys.address_text) == keys.address
    with pytest.raises(ApiError) as refused:
        address("mc1nope", "owner")
    assert refused.value.code == "invalid_address" and refused.value.message.startswith("owner: ")


def test_transaction() -> None:
    keys = AccountKeys.generate()
    tx = signed(keys, 0, "registry.register", b"")
    params = ChainParams(max_tx_bytes=1_000)
    assert transaction(tx.encoded.hex(), params) == tx
    with pytest.raises(MalformedTx):
        transaction("c0", params)
    with pytest.raises(TxTooLarge, match="POST /v1/records"):
        transaction("00" * 1_002, params)  # refused before the hex is decoded
    with pytest.raises(TxTooLarge):
        transaction("00" * 1_001, params)
