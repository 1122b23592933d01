"""The node's Ethereum key (`eth.key`): the account that pays for and signs anchor
transactions on the verification chain.

It is separate from the node's Ed25519 key: a different curve (secp256k1), and an
account that holds ether, so it can be funded, rotated or left out (a node that
does not send anchors needs none). The file is a small JSON document written with
mode 0600 through a temporary file linked into place, so a crash never leaves half
a key and an existing key is never replaced. The address is kept in clear so tools
can show which account to fund; on load it is re-derived from the secret and
compared. Secrets never appear in error messages."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from medchain.anchor._errors import EthKeyError
from medchain.crypto import KeyFileError, write_secret_file

ETH_KEY_KIND = "medchain-eth-key"
ETH_KEY_VERSION = 1

_MAX_FILE_BYTES = 4096
_PRIVATE_KEY = re.compile(r"[0-9a-f]{64}")
_CREATE_HINT = "create one with `medchain.anchor.new_eth_key(path)` (devnet set-up does this)"


def new_eth_key(path: Path | str) -> LocalAccount:
    """Create a fresh secp256k1 key at `path` (mode 0600) and return its account;
    refuses to replace an existing file, which may hold the only copy of a funded key."""
    path = Path(path)
    account: LocalAccount = Account.create()
    document = {
        "kind": ETH_KEY_KIND,
        "version": ETH_KEY_VERSION,
        "address": account.address,
        "private_key": account.key.hex().removeprefix("0x"),
    }
    _write_new_file(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
    return account


def load_eth_key(path: Path | str) -> LocalAccount:
    """The account whose key `path` holds; EthKeyError (naming the file) otherwise."""
    path = Path(path)
    document = _read_document(path)
    if document.get("kind") != ETH_KEY_KIND or document.get("version") != ETH_KEY_VERSION:
        raise EthKeyError(
            f"{path} is not a version {ETH_KEY_VERSION} medchain Ethereum key file; check "
            f"the path (the node reads the `key_file` of its anchor settings), or {_CREATE_HINT}"
        )
    secret, address = document.get("private_key"), document.get("address")
    if not isinstance(secret, str) or not _PRIVATE_KEY.fullmatch(secret):
        raise EthKeyError(
            f"{path}: 'private_key' is not 32 bytes of lower-case hex: the file is damaged "
            "or was edited; restore it from your backup"
        )
    account: LocalAccount | None
    try:
        account = Account.from_key(bytes.fromhex(secret))
    except Exception:  # out of the curve's range; raised below, without the secret
        account = None
    if account is None or account.address != address:
        raise EthKeyError(
            f"{path} is inconsistent: its address does not belong to the key it holds "
            "(the file is damaged or was edited); restore it from your backup"
        )
    return account


def _read_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise EthKeyError(f"there is no Ethereum key file at {path}; {_CREATE_HINT}") from None
    except OSError as exc:
        raise EthKeyError(
            f"cannot read Ethereum key file {path} ({exc.strerror or exc}); check the path "
            "and that you may read it"
        ) from None
    document: object = None
    with contextlib.suppress(UnicodeDecodeError, ValueError):
        document = json.loads(raw.decode("utf-8")) if len(raw) <= _MAX_FILE_BYTES else None
    # Raised outside the handler: a JSON error quotes the document, secret included.
    if not isinstance(document, dict):
        raise EthKeyError(
            f"{path} is not a medchain Ethereum key file (not a small JSON object); check "
            "the path, or restore the file from your backup"
        )
    return document


def _write_new_file(path: Path, data: bytes) -> None:
    try:
        write_secret_file(path, data)
    except KeyFileError as exc:
        raise EthKeyError(exc.message.replace("the key file", "the Ethereum key file")) from None
