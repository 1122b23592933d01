"""`medchain consent …`, `record grant --purpose --expires` and `record set-terms` on a
local chain founded by the devnet's organisations; each refusal is one line."""

from __future__ import annotations

import json
from pathlib import Path

from fhir.resources.R4B.consent import Consent

from tests.cli.clock import Clock, clock
from tests.cli.consortium import CONDITION, EXAMPLES, Cli, cli, clinician, patient, refusal

__all__ = ["cli", "clock"]

HEART_RATE = str(EXAMPLES / "observation-heart-rate.json")


def _put(cli: Cli, key: str, owner: str, file: str = CONDITION) -> str:
    return (
        cli("record", "put", "--key", key, "--patient", owner, "--file", file).strip().split()[-1]
    )


def _next_block(cli: Cli, key: str, owner: str) -> None:
    """Commit a block at the clock's time, so the latest block shows it to clients."""
    _put(cli, key, owner, HEART_RATE)


def test_an_expired_grant_closes_later_versions(cli: Cli, clock: Clock) -> None:
    jane_key, jane = patient(cli, "jane")
    doctor_key, doctor = patient(cli, "ana")
    record_id = _put(cli, jane_key, jane)
    granted = cli(
        "record", "grant", "--key", jane_key, record_id, "--reader", doctor,
        "--purpose", "CAREMGT", "--purpose", "treat", "--expires", "2d",
    )  # fmt: skip
    assert "until" in granted
    assert "Condition" in cli("record", "get", "--key", doctor_key, record_id)

    clock.skip_days(3)
    _next_block(cli, jane_key, jane)
    cli("record", "update", "--key", jane_key, record_id, "--file", CONDITION)
    line = refusal(cli, "record", "get", "--key", doctor_key, record_id)
    assert line.startswith("error (not_authorised)")
    assert "Condition" in cli("record", "get", "--key", doctor_key, record_id, "--version", "1")
    assert "expired" in cli("record", "audit", record_id)


def test_set_terms_renews_a_grant(cli: Cli, clock: Clock) -> None:
    jane_key, jane = patient(cli, "jane")
    doctor_key, doctor = patient(cli, "ana")
    record_id = _put(cli, jane_key, jane)
    cli("record", "grant", "--key", jane_key, record_id, "--reader", doctor, "--expires", "1d")
    renewed = cli(
        "record", "set-terms", "--key", jane_key, record_id, "--reader", doctor,
        "--purpose", "HPAYMT", "--expires", "2099-12-31",
    )  # fmt: skip
    assert "HPAYMT (healthcare payment)" in renewed and "until 2100-01-01" in renewed
    clock.skip_days(3)
    _next_block(cli, jane_key, jane)
    cli("record", "update", "--key", jane_key, record_id, "--file", CONDITION)
    assert "Condition" in cli("record", "get", "--key", doctor_key, record_id)
    grant = ("record", "set-terms", "--key", jane_key, record_id, "--reader", doctor)
    assert "choose among" in refusal(cli, *grant, "--purpose", "fun")
    assert "give an ISO date" in refusal(cli, *grant, "--expires", "soon")


def test_a_standing_consent_opens_a_clinicians_records_to_the_gp(cli: Cli, tmp_path: Path) -> None:
    jane_key, jane = patient(cli, "jane")
    gp_key, gp = patient(cli, "gp")
    nurse_key, _ = clinician(cli, "nurse", "nurse")
    earlier = _put(cli, jane_key, jane)
    granted = cli("consent", "grant", gp, "--type", "Condition", "--key", jane_key)
    assert "standing consent 1" in granted and "1 past records opened" in granted
    assert "Condition" in cli("record", "get", "--key", gp_key, earlier)
    later = _put(cli, nurse_key, jane)
    assert "Condition" in cli("record", "get", "--key", gp_key, later)
    heart_rate = _put(cli, nurse_key, jane, HEART_RATE)
    assert refusal(cli, "record", "get", "--key", gp_key, heart_rate).startswith(
        "error (not_authorised)"
    )
    listed = cli("consent", "list", "--patient", jane)
    assert listed.startswith("1  ") and "Condition" in listed and "never expires" in listed


def test_a_consent_exports_and_imports_as_fhir(cli: Cli, tmp_path: Path) -> None:
    jane_key, _ = patient(cli, "jane")
    _, gp = patient(cli, "gp")
    cli("consent", "grant", gp, "--type", "Observation", "--code", "http://loinc.org|8867-4",
        "--purpose", "CAREMGT", "--expires", "2099-12-31", "--key", jane_key)  # fmt: skip
    exported = tmp_path / "consent.json"
    cli("consent", "export", "1", "--out", str(exported))
    resource = json.loads(exported.read_text())
    assert Consent.model_validate(resource).status == "active"
    assert "59284-0" in cli("consent", "export", "1")
    cli("consent", "revoke", "1", "--key", jane_key)
    imported = cli("consent", "import", str(exported), "--key", jane_key)
    assert "standing consent 2" in imported
    first, second = cli("consent", "list", "--key", jane_key).strip().splitlines()
    assert "revoked at height" in first
    assert first.split()[1:4] == second.split()[1:4]  # same reader, types, codes
    assert "no standing consent 9" in refusal(cli, "consent", "export", "9")
    exported.write_text(json.dumps({**resource, "status": "inactive"}))
    line = refusal(cli, "consent", "import", str(exported), "--key", jane_key)
    assert line.startswith("error (invalid_consent)") and "only an active one" in line
