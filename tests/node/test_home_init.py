"""A node home set up without anyone else's secrets: key, certificate and a config
without peers, then peers allowed one at a time, each checked against its certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchain.crypto import load_keys
from medchain.node import (
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    NodeConfig,
    add_peer,
    init_home,
    read_config,
)
from medchain.p2p import certificate_key
from medchain.types import MedchainError


def _home(tmp: Path, name: str) -> tuple[Path, bytes]:
    home = tmp / name
    keys, existing = init_home(home, NodeConfig(name=name))
    assert not existing
    return home, keys.public_key


def test_a_new_home_holds_key_certificate_and_config(tmp_path: Path) -> None:
    home, key = _home(tmp_path, "alpha")
    assert load_keys(home / NODE_KEY_FILE).public_key == key
    assert certificate_key((home / NODE_CERT_FILE).read_bytes()) == key
    assert read_config(home) == NodeConfig(name="alpha")
    with pytest.raises(MedchainError, match="already exists"):
        init_home(home, NodeConfig(name="alpha"))


def test_a_key_already_in_the_home_is_kept(tmp_path: Path) -> None:
    home, key = _home(tmp_path, "alpha")
    (home / "config.json").unlink()
    kept, existing = init_home(home, NodeConfig(name="alpha"))
    assert existing and kept.public_key == key


def test_a_bad_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(MedchainError, match="bad --name"):
        init_home(tmp_path / "h", NodeConfig(name=""))
    assert not (tmp_path / "h").exists()


def test_peers_are_added_once_each_and_checked_against_their_certificate(tmp_path: Path) -> None:
    home, own = _home(tmp_path, "alpha")
    beta, beta_key = _home(tmp_path, "beta")
    gamma, gamma_key = _home(tmp_path, "gamma")
    beta_cert, gamma_cert = beta / NODE_CERT_FILE, gamma / NODE_CERT_FILE
    assert add_peer(home, "beta", beta_key.hex(), beta_cert, "10.0.0.2", 9600) == 1
    assert add_peer(home, "gamma", gamma_key.hex(), gamma_cert, None, None) == 2
    peers = read_config(home).peers
    assert [(p.name, p.key, p.host, p.port) for p in peers] == [
        ("beta", beta_key, "10.0.0.2", 9600),
        ("gamma", gamma_key, None, None),
    ]
    refusals = [
        (("beta", beta_key.hex(), beta_cert, None, None), "already lists peer 'beta'"),
        (("delta", "00ff", beta_cert, None, None), "not a node key"),
        (("delta", gamma_key.hex(), beta_cert, None, None), "another key than --key"),
        (("delta", own.hex(), home / NODE_CERT_FILE, None, None), "this node's own key"),
        (("delta", beta_key.hex(), beta_cert, "h", None), "both --host and --port"),
        (("delta", beta_key.hex(), tmp_path / "none.crt", None, None), "cannot read"),
    ]
    for args, message in refusals:
        with pytest.raises(MedchainError, match=message):
            add_peer(home, *args)
    assert len(read_config(home).peers) == 2
