from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from medchain.anchor import FINALIZED, AnchorSettings, AnchorSettingsError

# fixed, not random: parameter ids must match across xdist workers
ADDRESS = Account.from_key(b"\x01" * 32).address


def minimal() -> dict[str, Any]:
    return {"rpc_url": "http://127.0.0.1:8545", "eth_chain_id": 1337, "contract": ADDRESS}


def test_defaults() -> None:
    settings = AnchorSettings.from_json(minimal())
    assert settings.key_file == "eth.key"
    assert settings.finality == FINALIZED
    assert settings.poll_ms == 1000
    assert settings.enabled is True


@pytest.mark.parametrize("finality", [FINALIZED, 1, 12])
def test_round_trip_through_json(finality: int | str) -> None:
    doc = {
        **minimal(),
        "key_file": "keys/eth.key",
        "finality": finality,
        "poll_ms": 250,
        "enabled": False,
    }
    settings = AnchorSettings.from_json(json.loads(json.dumps(doc)))
    assert settings.to_json() == doc
    assert AnchorSettings.from_json(settings.to_json()) == settings


def test_lower_case_contract_is_checksummed() -> None:
    settings = AnchorSettings.from_json({**minimal(), "contract": ADDRESS.lower()})
    assert settings.contract == ADDRESS


def test_key_path_is_under_the_home_unless_absolute(tmp_path: Path) -> None:
    settings = AnchorSettings.from_json(minimal())
    assert settings.key_path(tmp_path) == tmp_path / "eth.key"
    absolute = AnchorSettings.from_json({**minimal(), "key_file": "/etc/medchain/eth.key"})
    assert absolute.key_path(tmp_path) == Path("/etc/medchain/eth.key")


def wrong_checksum(address: str) -> str:
    letters = [i for i, c in enumerate(address) if c.isalpha() and i > 1]
    i = letters[0]
    return address[:i] + address[i].swapcase() + address[i + 1 :]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rpc_url", "ws://127.0.0.1:8546", "anchor.rpc_url must be an http"),
        ("rpc_url", 8545, "anchor.rpc_url"),
        ("eth_chain_id", 0, "anchor.eth_chain_id must be a positive integer"),
        ("eth_chain_id", True, "anchor.eth_chain_id"),
        ("eth_chain_id", "1337", "anchor.eth_chain_id"),
        ("contract", "0x1234", "anchor.contract must be an Ethereum address"),
        ("contract", wrong_checksum(ADDRESS), "correctly checksummed"),
        ("key_file", "", "anchor.key_file"),
        ("finality", 0, "anchor.finality must be a number of confirmations"),
        ("finality", "safe", "anchor.finality"),
        ("finality", 1.5, "anchor.finality"),
        ("poll_ms", 0, "anchor.poll_ms"),
        ("enabled", "yes", "anchor.enabled must be true or false"),
    ],
)
def test_bad_values_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(AnchorSettingsError, match=message):
        AnchorSettings.from_json({**minimal(), field: value})


def test_missing_and_unknown_fields() -> None:
    with pytest.raises(AnchorSettingsError, match="lacks eth_chain_id, contract"):
        AnchorSettings.from_json({"rpc_url": "http://127.0.0.1:8545"})
    with pytest.raises(AnchorSettingsError, match="unknown fields finalty"):
        AnchorSettings.from_json({**minimal(), "finalty": 3})
    with pytest.raises(AnchorSettingsError, match="must be a JSON object"):
        AnchorSettings.from_json([])  # type: ignore[arg-type]


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(AnchorSettingsError, match=r"anchor\.poll_ms"):
        AnchorSettings("http://127.0.0.1:8545", 1337, ADDRESS, poll_ms=-1)
