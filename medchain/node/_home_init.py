"""A node home on an organisation's own machine: its key, its certificate and a config
without peers, then peers allowed one at a time. Nothing here needs another
organisation's secrets: a peer is its public key, its certificate and where to dial it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from medchain.crypto import AccountKeys, PassphraseRequired, load_keys, save_keys
from medchain.node._config import (
    CONFIG_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    NodeConfig,
    PeerConfig,
    read_config,
    write_config,
)
from medchain.p2p import certificate_key, node_certificate
from medchain.types import MedchainError


def _node_keys(home: Path) -> tuple[AccountKeys, bool]:
    """The key in HOME/node.key (True) or a new one, not yet saved (False). A node
    starts unattended, so its key file cannot be passphrase-protected."""
    path = home / NODE_KEY_FILE
    if not path.exists():
        return AccountKeys.generate(), False
    try:
        return load_keys(path), True
    except PassphraseRequired:
        raise MedchainError(
            f"{path} is passphrase-protected, but a node reads its key unattended at start; "
            "use an unencrypted key file (mode 0600, on an encrypted disk) or remove it"
        ) from None


def init_home(home: Path, config: NodeConfig) -> tuple[AccountKeys, bool]:
    """Write HOME's node.key (kept if already there), node.crt and `config`; the node's
    keys, and whether they were there before."""
    if (home / CONFIG_FILE).exists():
        raise MedchainError(
            f"{home / CONFIG_FILE} already exists; edit it, or allow peers with "
            "`medchain node add-peer`"
        )
    keys, existing = _node_keys(home)
    try:
        cert = node_certificate(keys, config.name)
    except ValueError as exc:
        raise MedchainError(f"bad --name: {exc}") from None
    home.mkdir(parents=True, exist_ok=True)
    if not existing:
        save_keys(home / NODE_KEY_FILE, keys)
    (home / NODE_CERT_FILE).write_bytes(cert)
    write_config(home, config)
    return keys, existing


def _peer_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise MedchainError(f"--key {text!r} is not a node key (64 hex digits)")
    return key


def add_peer(
    home: Path, name: str, key: str, cert: Path, host: str | None, port: int | None
) -> int:
    """Append a peer to HOME's allow-list: its node key (hex, checked against its
    certificate `cert`) and where to dial it (neither for a peer that dials in). The
    number of peers now allowed."""
    config = read_config(home)
    peer_key = _peer_key(key)
    if (host is None) != (port is None):
        raise MedchainError("give both --host and --port, or neither for a peer that dials in")
    try:
        pem = cert.read_bytes()
    except OSError as exc:
        raise MedchainError(f"cannot read {cert}: {exc.strerror}") from None
    if certificate_key(pem) != peer_key:
        raise MedchainError(
            f"{cert} is the certificate of another key than --key; ask {name!r} for its "
            "node.crt again and compare the key with the one in the genesis"
        )
    try:
        own = certificate_key((home / NODE_CERT_FILE).read_bytes())
    except OSError:
        raise MedchainError(
            f"{home} has no {NODE_CERT_FILE}; set it up with `medchain node init`"
        ) from None
    if peer_key == own:
        raise MedchainError(f"--key is this node's own key ({home / NODE_CERT_FILE})")
    for peer in config.peers:
        if peer.key == peer_key or peer.name == name:
            raise MedchainError(
                f"{home / CONFIG_FILE} already lists peer {peer.name!r} "
                f"({peer.key.hex()[:16]}…); edit or remove that entry first"
            )
    peers = (*config.peers, PeerConfig(name, peer_key, pem, host, port))
    write_config(home, dataclasses.replace(config, peers=peers))
    return len(peers)
