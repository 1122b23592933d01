"""`medchain notifications`: a patient's feed of what others did to their data."""

from __future__ import annotations

from tests.cli.consortium import CONDITION, admin, cli, patient, refusal
from tests.cli.test_cli import EXAMPLES, Cli

__all__ = ["cli"]


def test_the_feed_shows_records_by_others_and_proxies(cli: Cli) -> None:
    alice_key, alice = patient(cli, "alice")
    doctor_key, doctor = patient(cli, "ana")
    _, mother = patient(cli, "maria")
    assert "nothing yet" in cli("notifications", "--key", alice_key)
    cli("record", "put", "--key", alice_key, "--patient", alice,
        "--file", str(EXAMPLES / "observation-heart-rate.json"))  # fmt: skip
    assert "nothing yet" in cli("notifications", "--key", alice_key)  # her own record

    cli("org", "credential", doctor, "--role", "doctor", "--name", "Dr Ana Ruiz",
        "--key", admin(cli, "st-mary"))  # fmt: skip
    put = ("record", "put", "--key", doctor_key, "--patient", alice, "--file", CONDITION)
    record_id = cli(*put).strip().splitlines()[-1]
    cli("proxy", "add", mother, "--relation", "parent", "--scope", "grant", "--key", alice_key)
    feed = cli("notifications", "--patient", alice).strip().splitlines()
    assert len(feed) == 2
    assert record_id in feed[0] and "Condition" in feed[0] and doctor in feed[0]
    assert mother in feed[1] and "parent" in feed[1] and "grant" in feed[1]


def test_a_feed_is_a_patients_only(cli: Cli) -> None:
    assert "not a patient" in refusal(cli, "notifications", "--key", admin(cli, "st-mary"))
    assert "give --key" in refusal(cli, "notifications")
