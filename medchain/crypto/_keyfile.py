"""Account key files: a small JSON document holding an account's two secrets.

The public half (address and both public keys) is written in clear so tools can show
whose key a file holds without a passphrase; on load it is re-derived from the
secrets and compared, so a damaged or edited file is refused instead of signing as
somebody else. With a passphrase the secrets are sealed with AES-256-GCM under a
scrypt-derived key, with the address as associated data, so the clear half cannot be
swapped onto another account's ciphertext.

New files use scrypt with n=2**17, r=8, p=1: 128 MiB of memory and about half a
second of one core per guess (OWASP's recommended scrypt setting). scrypt rather
than Argon2id (RFC 9106) because it comes from `cryptography`, which medchain already
trusts for every other primitive, and because files written this way stay readable
by every earlier medchain (which accepted n up to 2**20): no new dependency and no
new file version. Files written before with n=2**15 still open; the work a file may
ask for is bounded at n=2**20 (1 GiB), so an edited file cannot exhaust memory.

A new passphrase must have at least 15 characters (Unicode code points), the length
NIST SP 800-63B-4 requires of a password that is the only factor: whoever copies an
encrypted key file can guess offline, as fast as scrypt lets them. Files with
shorter passphrases made before still open.

Version 2 (written only for keys that need it) adds what a key rotation or recovery
leaves: `account`, the address the keys sign for when it is not the signing key's own,
and the retired encryption secrets (sealed with the others), so records wrapped for
an earlier key still open. Version 1 files load as before.

Files are created with mode 0600 through a temporary file renamed into place, so a
crash never leaves half a key, and an existing file (maybe the only copy of a key)
is never replaced unless asked; `exposed_to_others` tells callers when a key file's
mode lets other users read it. Secrets never appear in error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medchain._fs import fsync_directory
from medchain.crypto._address import format_address, parse_address
from medchain.crypto._keys import AccountKeys
from medchain.types import MedchainError

KEY_FILE_KIND = "medchain-account-key"
KEY_FILE_VERSION = 2
"""The newest version this medchain reads; it writes version 1 for keys that have no
account of their own and no retired secrets, so older medchains read those."""

_SECRET_SIZE = 32
SCRYPT_N = 2**17
"""The scrypt cost new encrypted key files get."""
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_MIN_N = 2**15  # what files written before medchain raised the cost ask for
_SCRYPT_MAX_N = 2**20  # a file may ask for more work, never for unbounded memory
MIN_PASSPHRASE_CHARS = 15
_SALT_SIZE = 16
_NONCE_SIZE = 12
_MAX_FILE_BYTES = 64 * 1024
_HEX = re.compile(r"[0-9a-fA-F]*")
_NOT_JSON = object()


class KeyFileError(MedchainError):
    """A key file that cannot be written or read; the message names the file."""

    code = "bad_key_file"


class PassphraseRequired(KeyFileError):
    """The key file is encrypted and no passphrase was given (ask for one and retry)."""


class WeakPassphrase(KeyFileError):
    """A passphrase for a new key file that is too short to protect it."""

    code = "weak_passphrase"


def check_new_passphrase(passphrase: str) -> None:
    """WeakPassphrase unless `passphrase` is long enough to protect a new key file."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase(
            f"a passphrase of {len(passphrase)} characters is too short to protect a key "
            f"file that can be copied and guessed at offline; choose one of at least "
            f"{MIN_PASSPHRASE_CHARS} characters (a few unrelated words are easy to remember)"
        )


def exposed_to_others(path: Path | str) -> int | None:
    """The permission bits of the key file at `path` (mode & 0o777) when they let the
    group or others in, as ssh checks; None when only its owner may use it, or when
    that cannot be told (no such file, or a system without POSIX modes). A key file
    others can read is a key others may have copied."""
    if os.name != "posix":
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return stat.S_IMODE(mode) & 0o777 if mode & 0o077 else None


def save_keys(
    path: Path | str,
    keys: AccountKeys,
    passphrase: str | None = None,
    overwrite: bool = False,
) -> None:
    """Write `keys` to `path` (mode 0600), encrypted when a passphrase is given."""
    path = Path(path)
    if passphrase is not None and not passphrase:
        raise KeyFileError(
            f"refusing to write {path} with an empty passphrase, which protects nothing; "
            "give a real passphrase, or none for a plain file readable only by you"
        )
    if passphrase is not None:
        check_new_passphrase(passphrase)
    rotated = bool(keys.account or keys.retired_encryption_secrets)
    document: dict[str, Any] = {
        "kind": KEY_FILE_KIND,
        "version": 2 if rotated else 1,
        "address": keys.address_text,
        "public_key": keys.public_key.hex(),
        "encryption_public_key": keys.encryption_public_key.hex(),
    }
    if keys.account:
        document["account"] = format_address(keys.account)
    if passphrase is None:
        document["secret"] = {
            "signing_seed": keys.signing_seed.hex(),
            "encryption_secret": keys.encryption_secret.hex(),
        }
        if rotated:
            document["secret"]["retired_encryption_secrets"] = [
                r.hex() for r in keys.retired_encryption_secrets
            ]
    else:
        document["encrypted_secret"] = _seal(keys, passphrase)
    text = json.dumps(document, indent=2) + "\n"
    write_secret_file(path, text.encode("utf-8"), overwrite)


def load_keys(path: Path | str, passphrase: str | None = None) -> AccountKeys:
    """Read the keys in `path`; KeyFileError (naming the file) if that is not possible."""
    path = Path(path)
    document = _read_document(path)
    fields = _Fields(path, document)
    if document.get("kind") != KEY_FILE_KIND:
        raise KeyFileError(
            f"{path} is not a medchain account key file (its kind is "
            f"{_shown(document.get('kind'))}); check the path, or create a key file with "
            f"`medchain keys new --out {path}`"
        )
    version = document.get("version")
    if version not in (1, KEY_FILE_VERSION) or type(version) is not int:
        raise KeyFileError(
            f"{path} is a version {_shown(version)} key file; this medchain reads versions "
            f"1 to {KEY_FILE_VERSION}: upgrade medchain to read it"
        )
    account = _account(fields) if version >= 2 else b""
    address = fields.text("address")
    public_key = fields.hex("public_key", _SECRET_SIZE)
    encryption_public_key = fields.hex("encryption_public_key", _SECRET_SIZE)

    has_plain, has_sealed = "secret" in document, "encrypted_secret" in document
    if has_plain == has_sealed:
        raise KeyFileError(
            f"{path} must hold exactly one of 'secret' and 'encrypted_secret', it holds "
            f"{'both' if has_plain else 'neither'}: the file is damaged or was edited; "
            "restore it from your backup"
        )
    if has_plain:
        secret = fields.section("secret")
        retired = (
            secret.hex_list("retired_encryption_secrets", _SECRET_SIZE) if version >= 2 else ()
        )
        keys = AccountKeys(
            secret.hex("signing_seed", _SECRET_SIZE),
            secret.hex("encryption_secret", _SECRET_SIZE),
            account,
            retired,
        )
    else:
        if passphrase is None:
            raise PassphraseRequired(
                f"{path} is encrypted: give its passphrase to use it "
                "(the one chosen when the key was created)"
            )
        keys = _open(fields.section("encrypted_secret"), address, passphrase, account, version)

    if (
        keys.address_text != address
        or keys.public_key != public_key
        or keys.encryption_public_key != encryption_public_key
    ):
        raise KeyFileError(
            f"{path} is inconsistent: its address or public keys do not belong to the "
            "secret it holds (the file is damaged or was edited); restore it from your backup"
        )
    return keys


# --- reading ------------------------------------------------------------------------


def _account(fields: _Fields) -> bytes:
    """A version 2 file's `account`, when it has one (b"" otherwise)."""
    if "account" not in fields.document:
        return b""
    try:
        return parse_address(fields.text("account"))
    except MedchainError:
        raise fields._bad("account", "an account address") from None


def _read_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyFileError(
            f"there is no key file at {path}; create one with `medchain keys new --out {path}`"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot read key file {path} ({exc.strerror or exc}); check the path and "
            "that you may read it"
        ) from None
    if len(raw) > _MAX_FILE_BYTES:
        raise KeyFileError(f"{path} is far too large to be a medchain key file; check the path")
    document: object = _NOT_JSON
    with contextlib.suppress(UnicodeDecodeError, ValueError):
        document = json.loads(raw.decode("utf-8"))
    # Raised outside the handler: a JSON error carries the whole document, secrets
    # included, and must not ride along as the new error's __context__.
    if document is _NOT_JSON:
        raise KeyFileError(
            f"{path} is not a medchain key file (not JSON); check the path, or restore "
            "the file from your backup"
        )
    if not isinstance(document, dict):
        raise KeyFileError(f"{path} is not a medchain key file (not a JSON object)")
    return document


def _shown(value: object) -> str:
    """A short, safe rendering of a public field's value for messages."""
    if value is None:
        return "missing"
    if not isinstance(value, str | int | float | bool):
        return f"a JSON {type(value).__name__}"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Fields:
    """Typed access to a JSON object's fields, with errors that name file and field
    but never echo a value (it may be a secret)."""

    def __init__(self, path: Path, document: dict[str, Any], prefix: str = "") -> None:
        self.path, self.document, self.prefix = path, document, prefix

    def _get(self, name: str) -> object:
        if name not in self.document:
            raise KeyFileError(
                f"{self.path} has no '{self.prefix}{name}' field: the file is damaged or "
                "was edited; restore it from your backup"
            )
        return self.document[name]

    def _bad(self, name: str, expected: str) -> KeyFileError:
        return KeyFileError(
            f"{self.path}: '{self.prefix}{name}' is not {expected}: the file is damaged or "
            "was edited; restore it from your backup"
        )

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise self._bad(name, "text")
        return value

    def integer(self, name: str) -> int:
        value = self._get(name)
        if type(value) is not int:
            raise self._bad(name, "an integer")
        return value

    def hex(self, name: str, size: int) -> bytes:
        value = self._get(name)
        if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
            raise self._bad(name, f"{size} bytes of hex")
        return bytes.fromhex(value)

    def hex_list(self, name: str, size: int) -> tuple[bytes, ...]:
        value = self._get(name)
        if not isinstance(value, list) or not all(
            isinstance(v, str) and len(v) == 2 * size and _HEX.fullmatch(v) for v in value
        ):
            raise self._bad(name, f"a list of {size}-byte hex values")
        return tuple(bytes.fromhex(v) for v in value)

    def section(self, name: str) -> _Fields:
        value = self._get(name)
        if not isinstance(value, dict):
            raise self._bad(name, "a JSON object")
        return _Fields(self.path, value, f"{self.prefix}{name}.")


# --- passphrase protection ----------------------------------------------------------


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _seal(keys: AccountKeys, passphrase: str) -> dict[str, Any]:
    salt, nonce = os.urandom(_SALT_SIZE), os.urandom(_NONCE_SIZE)
    key = _kdf(passphrase, salt, SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    secrets = keys.signing_seed + keys.encryption_secret + b"".join(keys.retired_encryption_secrets)
    sealed = AESGCM(key).encrypt(nonce, secrets, keys.address_text.encode("utf-8"))
    return {
        "kdf": "scrypt",
        "n": SCRYPT_N,
        "r": _SCRYPT_R,
        "p": _SCRYPT_P,
        "salt": salt.hex(),
        "cipher": "aes-256-gcm",
        "nonce": nonce.hex(),
        "ciphertext": sealed.hex(),
    }


def _open(
    fields: _Fields, address: str, passphrase: str, account: bytes, version: int
) -> AccountKeys:
    path = fields.path
    if fields.text("kdf") != "scrypt" or fields.text("cipher") != "aes-256-gcm":
        raise KeyFileError(
            f"{path} is encrypted with a scheme this medchain does not know "
            "(expected scrypt and aes-256-gcm); upgrade medchain to read it"
        )
    n, r, p = fields.integer("n"), fields.integer("r"), fields.integer("p")
    if not (_SCRYPT_MIN_N <= n <= _SCRYPT_MAX_N and n & (n - 1) == 0) or (r, p) != (8, 1):
        raise KeyFileError(
            f"{path} asks for scrypt parameters n={n}, r={r}, p={p}, outside what medchain "
            "writes or accepts: the file is damaged or was edited; restore it from your backup"
        )
    salt = fields.hex("salt", _SALT_SIZE)
    nonce = fields.hex("nonce", _NONCE_SIZE)
    sealed = _sealed_secrets(fields, may_retire=version >= 2)
    key = _kdf(passphrase, salt, n, r, p)
    try:
        secret = AESGCM(key).decrypt(nonce, sealed, address.encode("utf-8"))
    except InvalidTag:
        raise KeyFileError(
            f"wrong passphrase for {path} (or the file was edited); try again with the "
            "passphrase chosen when the key was created"
        ) from None
    retired = secret[2 * _SECRET_SIZE :]
    return AccountKeys(
        secret[:_SECRET_SIZE],
        secret[_SECRET_SIZE : 2 * _SECRET_SIZE],
        account,
        tuple(retired[i : i + _SECRET_SIZE] for i in range(0, len(retired), _SECRET_SIZE)),
    )


def _sealed_secrets(fields: _Fields, may_retire: bool) -> bytes:
    """The sealed secrets: the two current ones, and in a version 2 file any retired
    ones (32 bytes each); then the 16-byte tag."""
    value = fields.text("ciphertext")
    size = len(value) // 2 - 16
    if (
        size < 2 * _SECRET_SIZE
        or size % _SECRET_SIZE
        or (size > 2 * _SECRET_SIZE and not may_retire)
    ):
        raise fields._bad("ciphertext", "sealed secrets of 32 bytes each")
    return fields.hex("ciphertext", size + 16)


# --- writing ------------------------------------------------------------------------


def write_secret_file(path: Path, data: bytes, overwrite: bool = False) -> None:
    """Write a file only its owner may read (0600), durably, and never over an existing
    one unless `overwrite`: a key file may hold the only copy of a key. KeyFileError
    with what to do otherwise."""
    exists_error = KeyFileError(
        f"refusing to overwrite the key file {path}: it may hold the only copy of a key; "
        "move it away first or choose another path"
    )
    try:
        if not overwrite and path.exists():
            raise exists_error
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # a name too long, a directory we may not write to
        raise KeyFileError(
            f"cannot write key file {path} ({exc.strerror or exc}); check that the "
            "directory exists and that you may write to it"
        ) from None
    try:
        with os.fdopen(fd, "wb") as tmp:  # mkstemp creates the file with mode 0600
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            _link_without_replacing(tmp_name, path, exists_error)
    except OSError as exc:
        raise KeyFileError(
            f"cannot write key file {path} ({exc.strerror or exc}); check free space and "
            "permissions"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    fsync_directory(path.parent)


def _link_without_replacing(tmp_name: str, path: Path, exists_error: KeyFileError) -> None:
    """Put the file in place only if nothing is there (atomic where hard links work)."""
    try:
        os.link(tmp_name, path)
    except FileExistsError:
        raise exists_error from None
    except OSError:
        # No hard links on this file system: check, then rename (tiny race window).
        if path.exists():
            raise exists_error from None
        os.replace(tmp_name, path)
