"""Setting up a gateway's home (medchain.gateway._home); running one from it is tested
live (tests/gateway/test_live.py) and through `medchain gateway` (tests/cli)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchain.crypto import load_keys
from medchain.gateway import GATEWAY_KEY_FILE, GatewayConfig, create_gateway_home, load_config
from medchain.types import MedchainError


def test_a_new_home_loads_with_its_config_and_key(tmp_path: Path) -> None:
    home = tmp_path / "a" / "gw"
    config = GatewayConfig(node_url="http://n:8601", host="0.0.0.0", port=8711)
    keys = create_gateway_home(home, config)
    assert load_config(home) == config
    assert load_keys(home / GATEWAY_KEY_FILE).address == keys.address


def test_a_home_is_never_set_up_twice(tmp_path: Path) -> None:
    first = create_gateway_home(tmp_path, GatewayConfig(node_url="http://n"))
    with pytest.raises(MedchainError, match="already a gateway home"):
        create_gateway_home(tmp_path, GatewayConfig(node_url="http://other"))
    assert load_keys(tmp_path / GATEWAY_KEY_FILE).address == first.address
    assert load_config(tmp_path).node_url == "http://n"


def test_a_config_that_would_not_load_leaves_no_key_behind(tmp_path: Path) -> None:
    with pytest.raises(MedchainError):
        create_gateway_home(tmp_path, GatewayConfig(node_url="http://n", port=0))
    assert not (tmp_path / GATEWAY_KEY_FILE).exists()
