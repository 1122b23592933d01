"""`medchain recovery …` and `medchain keys rotate` on a local chain: a patient who
deleted their key file makes a new one, two of three guardians approve, the waiting
period passes, the new key file reads the old record; a planned rotation retires the
old file; refusals are one line."""

from __future__ import annotations

from pathlib import Path

from tests.cli.clock import Clock, clock
from tests.cli.consortium import CONDITION, cli, patient, refusal
from tests.cli.test_cli import Cli

__all__ = ["cli", "clock"]


def _guarded(cli: Cli) -> tuple[str, str, list[str], str]:
    """Alice with a record and three guardians, two to approve after a day: her key
    file, her address, the guardians' key files and the record's id."""
    alice_key, alice = patient(cli, "alice")
    record_id = cli(
        "record", "put", "--key", alice_key, "--patient", alice, "--file", CONDITION
    ).split()[-1]
    guardians = [patient(cli, name) for name in ("bob", "carol", "dave")]
    out = cli(
        "recovery", "setup", "--key", alice_key, "--threshold", "2", "--delay", "1d",
        *[arg for _, address in guardians for arg in ("--guardian", address)],
    )  # fmt: skip
    assert "2 of 3 guardians" in out
    return alice_key, alice, [key for key, _ in guardians], record_id


def test_two_guardians_and_a_day_give_the_account_back(cli: Cli, clock: Clock) -> None:
    alice_key, alice, guardians, record_id = _guarded(cli)
    Path(alice_key).unlink()  # lost
    new_key = str(cli.tmp / "alice-new.key")
    cli("keys", "new", "--out", new_key)
    request_id = cli("recovery", "request", "--account", alice, "--key", new_key).split()[-1]
    assert f"to approve for {alice[:12]}" in cli("recovery", "status", "--key", guardians[0])
    cli("recovery", "approve", request_id, "--key", guardians[0])
    complete = ("recovery", "complete", request_id, "--key", new_key)
    assert refusal(cli, *complete).startswith("error (recovery_not_ready)")  # one guardian
    cli("recovery", "approve", request_id, "--key", guardians[2])
    assert "waiting period" in refusal(cli, *complete)
    clock.skip_days(2)
    assert "is yours again" in cli(*complete)
    assert cli("keys", "show", "--key", new_key).split()[1] == alice
    assert "Condition" in cli("record", "get", record_id, "--key", new_key)
    assert "completed" in cli("recovery", "status", "--patient", alice)


def test_the_old_key_cancels_and_a_rotation_retires_it(cli: Cli) -> None:
    alice_key, alice, guardians, record_id = _guarded(cli)
    thief_key = str(cli.tmp / "thief.key")
    cli("keys", "new", "--out", thief_key)
    request_id = cli("recovery", "request", "--account", alice, "--key", thief_key).split()[-1]
    cli("recovery", "approve", request_id, "--key", guardians[1])
    assert "cancelled" in cli("recovery", "cancel", "--key", alice_key)
    assert "cancelled" in cli("recovery", "status", "--patient", alice)

    newer = str(cli.tmp / "alice-2.key")
    out = cli("keys", "rotate", "--key", alice_key, "--out", newer, "--data", str(cli.data))
    assert "retired" in out
    assert "Condition" in cli("record", "get", record_id, "--key", newer)
    # the old file opens no re-wrapped record and signs for nothing
    assert "decryption_failed" in refusal(cli, "record", "get", record_id, "--key", alice_key)
    bob = cli("keys", "show", "--key", guardians[0]).split()[1]
    refused = refusal(cli, "transfer", "--key", alice_key, "--to", bob, "--amount", "1")
    assert refused.startswith("error (key_retired)")


def test_refusals_are_one_line(cli: Cli) -> None:
    alice_key, _alice = patient(cli, "alice")
    bob_key, bob = patient(cli, "bob")
    assert "e.g. 24h" in refusal(
        cli, "recovery", "setup", "--key", alice_key, "--guardian", bob, "--threshold", "2",
        "--delay", "soon",
    )  # fmt: skip
    assert "not a recovery request id" in refusal(
        cli, "recovery", "approve", "abc", "--key", bob_key
    )
    assert "give --key" in refusal(cli, "recovery", "status")
    assert "no recovery request is open" in refusal(cli, "recovery", "cancel", "--key", alice_key)
