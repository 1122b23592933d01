"""`medchain org …` on a local chain founded by the devnet's organisations: credentials,
proposals and attestations as an admin runs them, and each refusal as one line."""

from __future__ import annotations

import json
from pathlib import Path

from medchain.crypto import load_keys
from tests.cli.clock import Clock, clock
from tests.cli.consortium import CONDITION, admin, cli, patient, refusal
from tests.cli.test_cli import Cli

__all__ = ["cli", "clock"]


def test_the_founding_organisations_are_listed_and_shown(cli: Cli) -> None:
    listed = cli("org", "list")
    for org_id in ("st-mary", "riverside", "northlab", "civic-insure"):
        assert org_id in listed
    shown = cli("org", "show", "northlab")
    assert "research" in shown and "member" in shown
    assert load_keys(Path(admin(cli, "northlab"))).address_text in shown
    assert refusal(cli, "org", "show", "nowhere").startswith("error (")


def test_a_credentialed_doctor_writes_until_suspended_or_revoked(cli: Cli) -> None:
    _, alice = patient(cli, "alice")
    doctor_key, doctor = patient(cli, "ana")
    put = ("record", "put", "--key", doctor_key, "--patient", alice, "--file", CONDITION)

    assert refusal(cli, *put).startswith("error (not_credentialed)")
    staff = admin(cli, "st-mary")
    cli("org", "credential", doctor, "--role", "doctor", "--name", "Dr Ana Ruiz", "--key", staff)
    assert "Dr Ana Ruiz" in cli("org", "staff", "st-mary")
    assert len(cli(*put).strip().splitlines()[-1]) == 32  # the record's id

    cli("org", "suspend", doctor, "--reason", "leave of absence", "--key", staff)
    assert "suspended" in refusal(cli, *put)
    cli("org", "reinstate", doctor, "--reason", "back", "--key", staff)
    cli(*put)
    cli("org", "revoke", doctor, "--reason", "left the hospital", "--key", staff)
    assert "revoked" in refusal(cli, *put)
    assert "revoked" in cli("org", "credentials", doctor)


def test_an_expired_credential_is_refused(cli: Cli, clock: Clock) -> None:
    _, alice = patient(cli, "alice")
    doctor_key, doctor = patient(cli, "ana")
    cli("org", "credential", doctor, "--role", "doctor", "--name", "Dr Ana Ruiz", "--days", "1",
        "--key", admin(cli, "st-mary"))  # fmt: skip
    clock.skip_days(2)
    line = refusal(
        cli, "record", "put", "--key", doctor_key, "--patient", alice, "--file", CONDITION
    )
    assert line.startswith("error (not_credentialed)") and "expired" in line


def test_only_an_admin_of_the_issuer_changes_a_credential(cli: Cli) -> None:
    alice_key, alice = patient(cli, "alice")
    _, nurse = patient(cli, "nora")
    cli(
        "org",
        "credential",
        nurse,
        "--role",
        "nurse",
        "--name",
        "Nora",
        "--key",
        admin(cli, "st-mary"),
    )
    assert refusal(
        cli, "org", "credential", nurse, "--role", "doctor", "--name", "x", "--key", alice_key
    ).startswith("error (not_an_admin)")
    line = refusal(cli, "org", "suspend", nurse, "--reason", "x", "--key", admin(cli, "riverside"))
    assert line.startswith("error (")
    assert "active" in cli("org", "staff", "st-mary")  # nothing changed
    assert refusal(
        cli, "org", "credential", nurse, "--role", "surgeon", "--name", "x", "--key", alice_key
    ).startswith("error (")
    cli("org", "attest", alice, "--key", admin(cli, "riverside"))


def propose(cli: Cli, *args: str) -> str:
    """The id `org propose` prints last."""
    return cli("org", "propose", *args).strip().splitlines()[-1]


def _spec_file(cli: Cli, org_id: str) -> Path:
    admin_key, _ = cli.key(f"{org_id}-admin")
    account_key, _ = cli.key(f"{org_id}-account")
    account = load_keys(account_key)
    path = cli.tmp / f"{org_id}.json"
    path.write_text(
        json.dumps(
            {
                "org_id": org_id,
                "name": "Harbour Clinic",
                "kind": "clinic",
                "admins": [load_keys(admin_key).public_key.hex()],
                "public_key": account.public_key.hex(),
                "encryption_key": account.encryption_public_key.hex(),
            }
        )
    )
    return path


def test_an_organisation_joins_with_two_thirds_then_leaves(cli: Cli) -> None:
    spec = _spec_file(cli, "harbour")
    out = cli(
        "org",
        "propose",
        "--join",
        str(spec),
        "--reason",
        "new clinic",
        "--key",
        admin(cli, "st-mary"),
    )
    proposal = out.strip().splitlines()[-1]
    assert "open" in out
    cli("org", "approve", proposal, "--key", admin(cli, "riverside"))
    assert "2/3" in cli("org", "proposals")  # without two thirds, it stays open
    assert "harbour" not in cli("org", "list")
    assert refusal(cli, "org", "approve", proposal, "--key", admin(cli, "riverside")).startswith(
        "error (proposal_error)"
    )
    assert "passed" in cli("org", "approve", proposal, "--key", admin(cli, "northlab"))
    assert "harbour" in cli("org", "list")
    shown = cli("org", "proposal", proposal)
    assert "riverside" in shown and "northlab" in shown and "new clinic" in shown

    leave = propose(cli, "--leave", "harbour", "--reason", "closed", "--key", admin(cli, "st-mary"))
    for org_id in ("riverside", "northlab"):
        cli("org", "approve", leave, "--key", admin(cli, org_id))
    assert "3/4" in cli("org", "proposals")  # five members now: four approvals pass it
    assert "member" in cli("org", "show", "harbour")
    cli("org", "approve", leave, "--key", admin(cli, "civic-insure"))
    assert "left at" in cli("org", "show", "harbour")


def test_a_bad_proposal_file_or_choice_is_one_line(cli: Cli) -> None:
    key = admin(cli, "st-mary")
    broken = cli.tmp / "broken.json"
    broken.write_text('{"org_id": "x"}')
    assert "does not describe an organisation" in refusal(
        cli, "org", "propose", "--join", str(broken), "--reason", "r", "--key", key
    )
    assert "exactly one of" in refusal(
        cli, "org", "propose", "--join", str(broken), "--leave", "x", "--reason", "r", "--key", key
    )
    assert "no proposal 7" in refusal(cli, "org", "proposal", "7")
