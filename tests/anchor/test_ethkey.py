from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from medchain.anchor import ETH_KEY_FILE, EthKeyError, load_eth_key, new_eth_key
from medchain.types import MedchainError


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_new_key_loads_back_as_the_same_account(tmp_path: Path) -> None:
    path = tmp_path / ETH_KEY_FILE
    account = new_eth_key(path)
    loaded = load_eth_key(path)
    assert loaded.address == account.address
    assert loaded.key == account.key
    assert read(path)["address"] == account.address


def test_file_is_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "sub" / ETH_KEY_FILE
    first = new_eth_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(EthKeyError, match="refusing to overwrite"):
        new_eth_key(path)
    assert load_eth_key(path).address == first.address
    assert [p.name for p in path.parent.iterdir()] == [ETH_KEY_FILE]  # no temporary left


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / ETH_KEY_FILE
    with pytest.raises(EthKeyError, match="no Ethereum key file") as caught:
        load_eth_key(path)
    assert str(path) in str(caught.value)
    assert "new_eth_key" in str(caught.value)
    assert isinstance(caught.value, MedchainError)


def damaged(path: Path, **changes: object) -> None:
    document = read(path)
    document.update(changes)
    path.write_text(json.dumps({k: v for k, v in document.items() if v is not None}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "medchain-account-key"}, "not a version 1 medchain Ethereum key file"),
        ({"version": 2}, "not a version 1"),
        ({"private_key": None}, "'private_key' is not"),
        ({"private_key": "00" * 31}, "'private_key' is not"),
        ({"private_key": "zz" * 32}, "'private_key' is not"),
        ({"private_key": "00" * 32}, "inconsistent"),  # not a valid secp256k1 key
        ({"private_key": "ff" * 32}, "inconsistent"),  # above the group order
        ({"address": "0x" + "00" * 20}, "inconsistent"),
    ],
)
def test_damaged_files_are_refused_without_echoing_the_secret(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / ETH_KEY_FILE
    secret = new_eth_key(path).key.hex().removeprefix("0x")
    damaged(path, **changes)
    with pytest.raises(EthKeyError, match=message) as caught:
        load_eth_key(path)
    text = str(caught.value) + repr(caught.value)
    assert secret not in text
    assert caught.value.__context__ is None or secret not in str(caught.value.__context__)


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b"\xff\xfe", b"{" * 5000])
def test_not_a_key_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / ETH_KEY_FILE
    path.write_bytes(content)
    with pytest.raises(EthKeyError, match="not a medchain Ethereum key file"):
        load_eth_key(path)
