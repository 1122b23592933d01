from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medchain.crypto import (
    MIN_PASSPHRASE_CHARS,
    SCRYPT_N,
    AccountKeys,
    KeyFileError,
    PassphraseRequired,
    WeakPassphrase,
    _keyfile,
    exposed_to_others,
    load_keys,
    save_keys,
)

KEYS = AccountKeys.generate()
OTHER = AccountKeys.generate()
SECRETS = (KEYS.signing_seed.hex(), KEYS.encryption_secret.hex())
PASSPHRASE = "correct horse battery staple"
OLD_SCRYPT_N = 2**15
"""What files got before the cost was raised; also the cheap cost these tests write
with (every test but one), so the suite stays fast."""


@pytest.fixture(scope="module", autouse=True)
def cheap_kdf() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_keyfile, "SCRYPT_N", OLD_SCRYPT_N)
        yield


def read(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def write(path: Path, document: object) -> None:
    path.write_text(json.dumps(document))


def assert_no_secret(error: BaseException) -> None:
    text = str(error) + repr(error)
    for secret in SECRETS:
        assert secret not in text
        assert secret.upper() not in text


@pytest.fixture
def plain_file(tmp_path: Path) -> Path:
    path = tmp_path / "alice.key"
    save_keys(path, KEYS)
    return path


@pytest.fixture(scope="module")
def sealed_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # scrypt is deliberately slow: derive once per module and copy the document.
    path = tmp_path_factory.mktemp("sealed") / "alice.key"
    save_keys(path, KEYS, passphrase=PASSPHRASE)
    return read(path)


@pytest.fixture
def sealed_file(tmp_path: Path, sealed_document: dict[str, Any]) -> Path:
    path = tmp_path / "alice-sealed.key"
    write(path, sealed_document)
    return path


# --- the happy paths ----------------------------------------------------------------


def test_plain_round_trip_and_layout(plain_file: Path) -> None:
    loaded = load_keys(plain_file)
    assert loaded == KEYS
    document = read(plain_file)
    assert document == {
        "kind": "medchain-account-key",
        "version": 1,
        "address": KEYS.address_text,
        "public_key": KEYS.public_key.hex(),
        "encryption_public_key": KEYS.encryption_public_key.hex(),
        "secret": {"signing_seed": SECRETS[0], "encryption_secret": SECRETS[1]},
    }
    assert document["address"].startswith("mc1")


def test_sealed_round_trip_and_layout(sealed_file: Path, sealed_document: dict[str, Any]) -> None:
    assert load_keys(sealed_file, PASSPHRASE) == KEYS
    assert "secret" not in sealed_document
    sealed = sealed_document["encrypted_secret"]
    assert (sealed["kdf"], sealed["n"], sealed["r"], sealed["p"]) == ("scrypt", OLD_SCRYPT_N, 8, 1)
    assert sealed["cipher"] == "aes-256-gcm"
    assert len(bytes.fromhex(sealed["salt"])) == 16
    assert len(bytes.fromhex(sealed["nonce"])) == 12
    text = sealed_file.read_text()
    for secret in SECRETS:
        assert secret not in text


def test_plain_file_ignores_an_unneeded_passphrase(plain_file: Path) -> None:
    assert load_keys(plain_file, "anything") == KEYS


def test_files_are_private_and_written_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "bob.key"  # missing directories are created
    save_keys(path, KEYS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["bob.key"]


def test_accepts_string_paths(tmp_path: Path) -> None:
    save_keys(str(tmp_path / "k.key"), KEYS)
    assert load_keys(str(tmp_path / "k.key")) == KEYS


def test_loaded_keys_do_not_show_secrets(plain_file: Path) -> None:
    shown = repr(load_keys(plain_file)) + str(load_keys(plain_file))
    assert KEYS.address_text in shown
    for secret in SECRETS:
        assert secret not in shown


# --- writing ------------------------------------------------------------------------


def test_refuses_to_overwrite_an_existing_file(plain_file: Path) -> None:
    before = plain_file.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite") as caught:
        save_keys(plain_file, OTHER)
    assert str(plain_file) in str(caught.value)
    assert plain_file.read_bytes() == before
    assert os.listdir(plain_file.parent) == [plain_file.name]


def test_overwrite_replaces_the_file(plain_file: Path) -> None:
    save_keys(plain_file, OTHER, overwrite=True)
    assert load_keys(plain_file) == OTHER
    assert stat.S_IMODE(plain_file.stat().st_mode) == 0o600


def test_refuses_an_empty_passphrase(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="empty passphrase"):
        save_keys(tmp_path / "k.key", KEYS, passphrase="")
    assert not (tmp_path / "k.key").exists()


@pytest.mark.parametrize("passphrase", ["Qz", "fourteen chars", "ÉÉÉÉÉÉÉÉÉÉÉÉÉÉ"])
def test_refuses_a_short_passphrase_and_says_how_long(tmp_path: Path, passphrase: str) -> None:
    with pytest.raises(WeakPassphrase) as caught:
        save_keys(tmp_path / "k.key", KEYS, passphrase=passphrase)
    assert caught.value.code == "weak_passphrase"
    message = str(caught.value)
    assert f"of {len(passphrase)} characters is too short" in message
    assert f"choose one of at least {MIN_PASSPHRASE_CHARS} characters" in message
    assert passphrase not in message
    assert "\n" not in message
    assert not (tmp_path / "k.key").exists()


def test_a_passphrase_is_counted_in_characters_not_bytes(tmp_path: Path) -> None:
    passphrase = "é" * MIN_PASSPHRASE_CHARS  # 15 characters, 30 bytes of UTF-8
    save_keys(tmp_path / "k.key", KEYS, passphrase=passphrase)
    assert load_keys(tmp_path / "k.key", passphrase) == KEYS


def test_new_files_get_the_production_kdf_cost(tmp_path: Path) -> None:
    # The one test that pays for the real cost: what `keys new --encrypt` writes.
    assert SCRYPT_N == 2**17
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_keyfile, "SCRYPT_N", SCRYPT_N)
        save_keys(tmp_path / "k.key", KEYS, passphrase=PASSPHRASE)
    sealed = read(tmp_path / "k.key")["encrypted_secret"]
    assert (sealed["kdf"], sealed["n"], sealed["r"], sealed["p"]) == ("scrypt", 2**17, 8, 1)
    assert load_keys(tmp_path / "k.key", PASSPHRASE) == KEYS


def _written_the_old_way(keys: AccountKeys, passphrase: str) -> dict[str, Any]:
    """A key file as medchain wrote it before the cost was raised (scrypt n=2**15),
    built here from the primitives rather than by the code under test."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = Scrypt(salt=salt, length=32, n=OLD_SCRYPT_N, r=8, p=1).derive(passphrase.encode())
    sealed = AESGCM(key).encrypt(
        nonce, keys.signing_seed + keys.encryption_secret, keys.address_text.encode()
    )
    return {
        "kind": "medchain-account-key",
        "version": 1,
        "address": keys.address_text,
        "public_key": keys.public_key.hex(),
        "encryption_public_key": keys.encryption_public_key.hex(),
        "encrypted_secret": {
            "kdf": "scrypt",
            "n": OLD_SCRYPT_N,
            "r": 8,
            "p": 1,
            "salt": salt.hex(),
            "cipher": "aes-256-gcm",
            "nonce": nonce.hex(),
            "ciphertext": sealed.hex(),
        },
    }


def test_files_written_the_old_way_still_open(tmp_path: Path) -> None:
    # Old files may also have a passphrase shorter than new files need: still theirs.
    path = tmp_path / "old.key"
    write(path, _written_the_old_way(KEYS, "old"))
    assert load_keys(path, "old") == KEYS
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_keys(path, "olde")


@pytest.mark.parametrize(
    ("mode", "exposed"),
    [
        (0o600, None),
        (0o400, None),
        (0o640, 0o640),
        (0o604, 0o604),
        (0o620, 0o620),
        (0o644, 0o644),
        (0o777, 0o777),
    ],
)
def test_exposed_to_others_reports_group_and_other_bits(
    plain_file: Path, mode: int, exposed: int | None
) -> None:
    plain_file.chmod(mode)
    assert exposed_to_others(plain_file) == exposed
    assert exposed_to_others(str(plain_file)) == exposed


def test_exposed_to_others_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert exposed_to_others(tmp_path / "nope.key") is None


def test_unwritable_location_is_a_key_file_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(KeyFileError, match="cannot write key file") as caught:
        save_keys(blocker / "k.key", KEYS)
    assert caught.value.code == "bad_key_file"


# --- reading: every way a file can be wrong ------------------------------------------


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError) as caught:
        load_keys(path)
    assert caught.value.code == "bad_key_file"
    assert f"there is no key file at {path}" in str(caught.value)
    assert f"medchain keys new --out {path}" in str(caught.value)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read key file") as caught:
        load_keys(tmp_path)  # a directory
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe\x00binary", b"{not json", b'{"secret": {"signing_seed": "' + b"ab" * 32],
)
def test_not_json(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match="not JSON") as caught:
        load_keys(path)
    assert str(path) in str(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_not_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write(path, [1, 2, 3])
    with pytest.raises(KeyFileError, match="not a JSON object"):
        load_keys(path)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b" " * 100_000)
    with pytest.raises(KeyFileError, match="too large"):
        load_keys(path)


Edit = Callable[[dict[str, Any]], None]


def _set(key: str, value: object) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        d[key] = value

    return edit


def _del(key: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        del d[key]

    return edit


def _set_secret(key: str, value: object) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        d["secret"][key] = value

    return edit


def _del_secret(key: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        del d["secret"][key]

    return edit


PLAIN_DAMAGE: list[tuple[str, Edit, str]] = [
    ("wrong kind", _set("kind", "ethereum-keystore"), 'its kind is "ethereum-keystore"'),
    ("no kind", _del("kind"), "its kind is missing"),
    ("future version", _set("version", 3), "version 3 key file; .* upgrade medchain"),
    ("version as text", _set("version", "1"), 'version "1" key file'),
    ("version as bool", _set("version", True), "version true key file"),
    ("no address", _del("address"), "no 'address' field"),
    ("address not text", _set("address", 5), "'address' is not text"),
    ("no public key", _del("public_key"), "no 'public_key' field"),
    ("no encryption key", _del("encryption_public_key"), "no 'encryption_public_key' field"),
    ("no secret", _del("secret"), "holds neither"),
    ("both secrets", _set("encrypted_secret", {}), "holds both"),
    ("secret not object", _set("secret", "x"), "'secret' is not a JSON object"),
    ("no seed", _del_secret("signing_seed"), "no 'secret.signing_seed' field"),
    ("no enc secret", _del_secret("encryption_secret"), "no 'secret.encryption_secret' field"),
    ("short pubkey", _set("public_key", "ab" * 31), "'public_key' is not 32 bytes of hex"),
    ("bad hex pubkey", _set("public_key", "zz" * 32), "'public_key' is not 32 bytes of hex"),
    ("spaced hex", _set("public_key", " " + "ab" * 31 + " a"), "not 32 bytes of hex"),
    ("short seed", _set_secret("signing_seed", SECRETS[0][:-2]), "'secret.signing_seed' is not"),
    ("odd seed", _set_secret("signing_seed", SECRETS[0][:-1] + "g"), "'secret.signing_seed' is"),
    ("seed as int", _set_secret("signing_seed", 7), "'secret.signing_seed' is not 32 bytes"),
    ("long enc", _set_secret("encryption_secret", SECRETS[1] + "00"), "'secret.encryption_sec"),
    ("other address", _set("address", OTHER.address_text), "is inconsistent"),
    ("other pubkey", _set("public_key", OTHER.public_key.hex()), "is inconsistent"),
    (
        "other enc pubkey",
        _set("encryption_public_key", OTHER.encryption_public_key.hex()),
        "is inconsistent",
    ),
    ("other seed", _set_secret("signing_seed", OTHER.signing_seed.hex()), "is inconsistent"),
    (
        "other enc secret",
        _set_secret("encryption_secret", OTHER.encryption_secret.hex()),
        "is inconsistent",
    ),
]


@pytest.mark.parametrize(
    ("edit", "reason"), [c[1:] for c in PLAIN_DAMAGE], ids=[c[0] for c in PLAIN_DAMAGE]
)
def test_damaged_plain_files_are_refused(plain_file: Path, edit: Edit, reason: str) -> None:
    document = read(plain_file)
    edit(document)
    write(plain_file, document)
    with pytest.raises(KeyFileError, match=reason) as caught:
        load_keys(plain_file)
    assert str(plain_file) in str(caught.value)
    assert caught.value.code == "bad_key_file"
    assert_no_secret(caught.value)


def test_passphrase_needed_but_not_given(sealed_file: Path) -> None:
    with pytest.raises(PassphraseRequired, match="is encrypted") as caught:
        load_keys(sealed_file)
    assert isinstance(caught.value, KeyFileError)
    assert caught.value.code == "bad_key_file"
    assert str(sealed_file) in str(caught.value)


def test_wrong_passphrase(sealed_file: Path) -> None:
    with pytest.raises(KeyFileError, match="wrong passphrase") as caught:
        load_keys(sealed_file, PASSPHRASE + "!")
    assert str(sealed_file) in str(caught.value)
    assert_no_secret(caught.value)


def test_sealed_secret_is_bound_to_its_address(sealed_file: Path) -> None:
    # Moving the ciphertext under another account's clear half must not decrypt.
    document = read(sealed_file)
    document["address"] = OTHER.address_text
    document["public_key"] = OTHER.public_key.hex()
    document["encryption_public_key"] = OTHER.encryption_public_key.hex()
    write(sealed_file, document)
    with pytest.raises(KeyFileError, match=r"wrong passphrase .*or the file was edited"):
        load_keys(sealed_file, PASSPHRASE)


def _edit_sealed(key: str, value: object) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        d["encrypted_secret"][key] = value

    return edit


def _flip_ciphertext(d: dict[str, Any]) -> None:
    text = d["encrypted_secret"]["ciphertext"]
    d["encrypted_secret"]["ciphertext"] = ("0" if text[0] != "0" else "1") + text[1:]


SEALED_DAMAGE: list[tuple[str, Edit, str]] = [
    ("unknown kdf", _edit_sealed("kdf", "argon2id"), "scheme this medchain does not know"),
    ("unknown cipher", _edit_sealed("cipher", "aes-128-cbc"), "does not know"),
    ("huge n", _edit_sealed("n", 2**30), "n=1073741824"),
    ("small n", _edit_sealed("n", 2**10), "scrypt parameters"),
    ("n below the old cost", _edit_sealed("n", 2**14), "scrypt parameters"),
    ("n not power of 2", _edit_sealed("n", 40000), "scrypt parameters"),
    ("other r", _edit_sealed("r", 1), "scrypt parameters"),
    ("n as text", _edit_sealed("n", "32768"), "'encrypted_secret.n' is not an integer"),
    ("no salt", lambda d: d["encrypted_secret"].pop("salt"), "no 'encrypted_secret.salt'"),
    ("short nonce", _edit_sealed("nonce", "00" * 11), "'encrypted_secret.nonce' is not 12"),
    ("short ciphertext", _edit_sealed("ciphertext", "00" * 64), "'encrypted_secret.ciphertext'"),
    ("flipped ciphertext", _flip_ciphertext, "wrong passphrase"),
    ("other salt", _edit_sealed("salt", "00" * 16), "wrong passphrase"),
]


@pytest.mark.parametrize(
    ("edit", "reason"), [c[1:] for c in SEALED_DAMAGE], ids=[c[0] for c in SEALED_DAMAGE]
)
def test_damaged_sealed_files_are_refused(sealed_file: Path, edit: Edit, reason: str) -> None:
    document = read(sealed_file)
    edit(document)
    write(sealed_file, document)
    with pytest.raises(KeyFileError, match=reason) as caught:
        load_keys(sealed_file, PASSPHRASE)
    assert str(sealed_file) in str(caught.value)
    assert_no_secret(caught.value)


# --- version 2: rotated keys -------------------------------------------------------

ROTATED = AccountKeys(
    OTHER.signing_seed,
    OTHER.encryption_secret,
    KEYS.address,
    (os.urandom(32), KEYS.encryption_secret),
)
"""Keys that replaced KEYS's: they sign for KEYS's account and keep its secrets."""


def test_rotated_keys_round_trip_in_a_version_2_file(tmp_path: Path) -> None:
    path = tmp_path / "rotated.key"
    save_keys(path, ROTATED)
    document = read(path)
    assert document["version"] == 2
    assert document["address"] == document["account"] == KEYS.address_text
    loaded = load_keys(path)
    assert loaded == ROTATED
    assert loaded.address == KEYS.address and loaded.key_address == OTHER.address


def test_rotated_keys_round_trip_sealed(tmp_path: Path) -> None:
    path = tmp_path / "rotated.key"
    save_keys(path, ROTATED, PASSPHRASE)
    document = read(path)
    assert "secret" not in document and document["version"] == 2
    assert load_keys(path, PASSPHRASE) == ROTATED


def test_keys_without_an_account_of_their_own_still_write_version_1(plain_file: Path) -> None:
    assert read(plain_file)["version"] == 1
    assert "account" not in read(plain_file)


def test_a_version_1_file_cannot_smuggle_retired_secrets(tmp_path: Path) -> None:
    path = tmp_path / "rotated.key"
    save_keys(
        path,
        AccountKeys(KEYS.signing_seed, KEYS.encryption_secret, b"", (b"\x05" * 32,)),
        PASSPHRASE,
    )
    document = read(path)
    document["version"] = 1
    write(path, document)
    with pytest.raises(KeyFileError, match="ciphertext"):
        load_keys(path, PASSPHRASE)


ROTATED_DAMAGE: list[tuple[str, Edit, str]] = [
    ("account not an address", _set("account", "mc1notanaddress"), "'account' is not"),
    ("account not text", _set("account", 5), "'account' is not"),
    ("account of other keys", _set("account", OTHER.address_text), "inconsistent"),
    (
        "retired secret too short",
        _set_secret("retired_encryption_secrets", ["00"]),
        "'secret.retired_encryption_secrets' is not",
    ),
]


@pytest.mark.parametrize(
    ("edit", "reason"), [c[1:] for c in ROTATED_DAMAGE], ids=[c[0] for c in ROTATED_DAMAGE]
)
def test_damaged_version_2_files_are_refused(tmp_path: Path, edit: Edit, reason: str) -> None:
    path = tmp_path / "rotated.key"
    save_keys(path, ROTATED)
    document = read(path)
    edit(document)
    write(path, document)
    with pytest.raises(KeyFileError, match=reason):
        load_keys(path)
