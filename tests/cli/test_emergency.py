"""`medchain emergency …` on a local chain founded by four organisations: a patient's
policy (3 of 4), a credentialed doctor opens the set, organisations answer with
`serve --once`, the doctor reads once three have; refusals are one line."""

from __future__ import annotations

from tests.cli.clock import Clock, clock
from tests.cli.consortium import CONDITION, admin, cli, patient, refusal
from tests.cli.test_cli import Cli

__all__ = ["cli", "clock"]


def org_key(cli: Cli, org_id: str) -> str:
    return str(cli.data / "orgs" / org_id / "org.key")


def serve(cli: Cli, org_id: str) -> str:
    return cli("emergency", "serve", "--once", "--key", org_key(cli, org_id))


def _opened(cli: Cli) -> tuple[str, str, str]:
    """Alice's condition under a 3-of-4 policy, opened by a credentialed doctor: her
    key, the doctor's key and the request id."""
    alice_key, alice = patient(cli, "alice")
    assert "3 of 4 organisations" in cli("emergency", "policy", "--key", alice_key)
    cli("record", "put", "--key", alice_key, "--patient", alice, "--file", CONDITION)
    doctor_key, doctor = patient(cli, "ana")
    cli("org", "credential", doctor, "--role", "doctor", "--name", "Dr Ana Ruiz, ER",
        "--key", admin(cli, "st-mary"))  # fmt: skip
    out = cli("emergency", "open", alice, "--reason", "unconscious in the ER", "--key", doctor_key)
    return alice_key, doctor_key, out.strip().splitlines()[-1]


def test_three_organisations_open_the_set_two_do_not(cli: Cli) -> None:
    _, doctor_key, request_id = _opened(cli)
    read = ("emergency", "read", request_id, "--key", doctor_key)
    assert refusal(cli, *read).startswith("error (emergency_not_open)")
    for org_id in ("st-mary", "riverside"):
        assert request_id in serve(cli, org_id)
    assert "2 of the 3" in refusal(cli, *read)  # fewer than the threshold: closed
    serve(cli, "northlab")
    assert "Condition" in cli(*read)
    listed = cli("emergency", "list", "--org", "st-mary")
    assert request_id in listed and "unconscious in the ER" in listed and "3/3" in listed


def test_an_opening_expires_and_the_patient_sees_it(cli: Cli, clock: Clock) -> None:
    alice_key, _, request_id = _opened(cli)
    serve(cli, "st-mary")
    clock.skip_days(1)  # past the four hours' window
    assert request_id not in serve(cli, "riverside")  # too late: not answered
    assert "1/3" in cli("emergency", "list", "--patient", patient_address(cli, alice_key))
    feed = cli("notifications", "--key", alice_key)
    assert "break-glass" in feed and "unconscious in the ER" in feed


def patient_address(cli: Cli, key: str) -> str:
    return cli("keys", "show", "--key", key).split()[1]


def test_refusals_are_one_line(cli: Cli) -> None:
    alice_key, alice = patient(cli, "alice")
    cli("emergency", "policy", "--key", alice_key)
    stranger_key, _ = patient(cli, "eve")
    line = refusal(cli, "emergency", "open", alice, "--reason", "curious", "--key", stranger_key)
    assert line.startswith("error (not_credentialed)")
    assert "not a request id" in refusal(cli, "emergency", "read", "abc", "--key", stranger_key)
    assert "give --patient" in refusal(cli, "emergency", "list")
    assert "--off takes neither" in refusal(
        cli, "emergency", "policy", "--off", "--threshold", "2", "--key", alice_key
    )
    cli("emergency", "policy", "--off", "--key", alice_key)
    doctor_key, doctor = patient(cli, "ana")
    cli("org", "credential", doctor, "--role", "nurse", "--name", "Nurse Ana",
        "--key", admin(cli, "riverside"))  # fmt: skip
    line = refusal(cli, "emergency", "open", alice, "--reason", "collapse", "--key", doctor_key)
    assert line.startswith("error (")  # she opted out
