"""The command line, driven as a user would: keys, registry, records, research."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.cli import app
from medchain.crypto import _keyfile
from tests.cli.consortium import (
    EXAMPLES,
    HOSPITAL,
    RESEARCH,
    Cli,
    admin,
    clinician,
    org_account,
    patient,
)

runner = CliRunner()

__all__ = ["EXAMPLES", "Cli"]  # the harness, where the other command tests import it


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_keys_new_prints_address_only(cli: Cli) -> None:
    path, address = cli.key("alice")
    assert address.startswith("mc1")
    secret = json.loads(path.read_text())["secret"]["signing_seed"]
    shown = cli("keys", "show", "--key", str(path))
    assert address in shown and secret not in shown
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_keys_new_refuses_a_short_passphrase_before_confirming_it(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    result = runner.invoke(
        app, ["keys", "new", "--out", str(path), "--encrypt"], input="hunter2\nhunter2\n"
    )
    assert result.exit_code == 1, result.output
    assert "at least 15 characters" in result.stdout  # said when it is asked
    assert "Repeat for confirmation" not in result.stdout
    assert result.stderr.strip().splitlines() == [
        "error (weak_passphrase): a passphrase of 7 characters is too short to protect a key "
        "file that can be copied and guessed at offline; choose one of at least 15 "
        "characters (a few unrelated words are easy to remember)"
    ]
    assert not path.exists()


def test_keys_new_encrypts_with_a_long_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_keyfile, "SCRYPT_N", 2**15)  # cheap: the real cost is tested once
    path = tmp_path / "alice.key"
    passphrase = "violet kettle morning"
    result = runner.invoke(
        app, ["keys", "new", "--out", str(path), "--encrypt"], input=f"{passphrase}\n" * 2
    )
    assert result.exit_code == 0, result.output
    address = result.stdout.strip().splitlines()[-1]
    assert "encrypted_secret" in json.loads(path.read_text())
    shown = runner.invoke(
        app, ["keys", "show", "--key", str(path)], env={"MEDCHAIN_PASSPHRASE": passphrase}
    )
    assert shown.exit_code == 0, shown.output
    assert f"address:        {address}" in shown.stdout


def test_a_key_file_others_may_read_is_used_with_a_warning(cli: Cli) -> None:
    path, address = cli.key("alice")
    quiet = runner.invoke(app, ["keys", "show", "--key", str(path)])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    for mode in (0o644, 0o640, 0o604, 0o660):
        path.chmod(mode)
        result = runner.invoke(app, ["keys", "show", "--key", str(path)])
        assert result.exit_code == 0, result.output
        assert address in result.stdout
        assert result.stderr.splitlines() == [
            f"warning: key file {path} has mode {mode:04o}: other users of this machine may "
            f"read or change it; restrict it with `chmod 600 {path}`"
        ]


def test_records_story(cli: Cli) -> None:
    alice, alice_addr = patient(cli, "alice")
    bob, _ = clinician(cli, "bob")
    carol, carol_addr = clinician(cli, "carol")
    lab, lab_addr = org_account(cli, RESEARCH)

    out = cli(
        "record",
        "put",
        "--key",
        bob,
        "--patient",
        alice_addr,
        "--file",
        str(EXAMPLES / "observation-heart-rate.json"),
    )
    record_id = out.strip().splitlines()[-1]
    assert len(record_id) == 32

    assert '"resourceType": "Observation"' in cli("record", "get", "--key", str(alice), record_id)
    denied = cli("record", "get", "--key", carol, record_id, ok=False)
    assert "not an authorised reader" in denied

    cli("record", "grant", "--key", str(alice), record_id, "--reader", carol_addr)
    assert "Observation" in cli("record", "get", "--key", carol, record_id)
    refused = cli("record", "grant", "--key", bob, record_id, "--reader", lab_addr, ok=False)
    assert "not_owner" in refused

    cli("record", "revoke", "--key", str(alice), record_id, "--reader", carol_addr)
    cli(
        "record",
        "update",
        "--key",
        bob,
        record_id,
        "--file",
        str(EXAMPLES / "observation-heart-rate.json"),
    )
    assert "not an authorised reader" in cli("record", "get", "--key", carol, record_id, ok=False)

    cli("research", "grant", "--key", str(alice), record_id, "--institution", lab_addr)
    research = json.loads(cli("research", "data", "--key", lab))
    assert research[0]["record"] == record_id
    assert "display" not in json.dumps(research[0]["resource"]["subject"])

    audit = cli("record", "audit", record_id)
    for action in ("created", "granted", "revoked", "versioned", "research_granted"):
        assert action in audit
    assert record_id in cli("record", "list", "--patient", alice_addr)


def test_bad_inputs_get_clear_errors(cli: Cli, tmp_path: Path) -> None:
    alice, alice_addr = cli.key("alice")
    cli("register", "--key", str(alice), "--role", "patient", "--name", "Alice")
    broken = tmp_path / "broken.key"
    broken.write_text("{not json")
    assert "bad_key_file" in cli(
        "register", "--key", str(broken), "--role", "doctor", "--name", "X", ok=False
    )
    missing = cli("record", "get", "--key", str(tmp_path / "nope.key"), "0" * 32, ok=False)
    assert "medchain keys new" in missing
    typo = alice_addr[:-1] + ("q" if alice_addr[-1] != "q" else "p")
    assert "checksum" in cli(
        "record",
        "put",
        "--key",
        str(alice),
        "--patient",
        typo,
        "--file",
        str(EXAMPLES / "condition.json"),
        ok=False,
    )
    bad_fhir = tmp_path / "bad.json"
    bad_fhir.write_text(json.dumps({"resourceType": "Observation", "status": 7}))
    assert "invalid_fhir" in cli(
        "record",
        "put",
        "--key",
        str(alice),
        "--patient",
        alice_addr,
        "--file",
        str(bad_fhir),
        ok=False,
    )
    assert "unknown_record" in cli("record", "get", "--key", str(alice), "ab" * 16, ok=False)
    assert "not a record id" in cli("record", "audit", "xyz", ok=False)
    assert "unknown role" in cli(
        "register", "--key", str(alice), "--role", "wizard", "--name", "X", ok=False
    )


def test_names_on_chain_are_shown_as_registered(cli: Cli) -> None:
    # A display name is anyone's text: markup in it is shown, never obeyed (a stray
    # closing tag made `account` fail for everyone who looked).
    # A patient's name is sealed; the public one is the name a credential vouches for.
    _, bob_addr = patient(cli, "bob")
    staff = admin(cli, HOSPITAL)
    cli("org", "credential", bob_addr, "--role", "doctor", "--name", "[/]Dr. [bold]Bob",
        "--key", staff)  # fmt: skip
    assert "[/]Dr. [bold]Bob" in cli("org", "credentials", bob_addr)
    assert "[/]Dr. [bold]Bob" in cli("org", "staff", HOSPITAL)


def test_status_and_account(cli: Cli) -> None:
    alice, alice_addr = cli.key("alice")
    cli("register", "--key", str(alice), "--role", "patient", "--name", "Alice")
    # registering, then the patient's emergency policy among the founding organisations
    assert "height:     2" in cli("status")
    assert "patient" in cli("account", alice_addr)
