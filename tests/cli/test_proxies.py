"""`medchain proxy …` on a local chain: a mother acts for her child within the scopes
the child gave her, until their expiry; each refusal is one line."""

from __future__ import annotations

from tests.cli.clock import Clock, clock
from tests.cli.consortium import CONDITION, cli, patient, refusal
from tests.cli.test_cli import Cli

__all__ = ["cli", "clock"]


def test_a_mother_acts_for_her_child_within_her_scopes(cli: Cli) -> None:
    child_key, child = patient(cli, "leo")
    mother_key, mother = patient(cli, "maria")
    _, doctor = patient(cli, "ana")
    record = cli("record", "put", "--key", child_key, "--patient", child, "--file", CONDITION)
    record_id = record.strip().splitlines()[-1]

    added = cli(
        "proxy", "add", mother, "--relation", "parent", "--scope", "read", "--key", child_key
    )
    assert "1 of your records opened to it" in added
    assert "parent" in cli("proxy", "list", "--patient", child)
    assert "Condition" in cli("record", "get", "--key", mother_key, record_id)
    line = refusal(cli, "record", "grant", "--key", mother_key, record_id, "--reader", doctor)
    assert line.startswith("error (not_a_proxy)")  # read only: she may not grant

    cli("proxy", "add", mother, "--relation", "parent", "--scope", "read,grant", "--key", child_key)
    cli("record", "grant", "--key", mother_key, record_id, "--reader", doctor)
    assert mother in cli("record", "audit", record_id)  # by proxy, for the child

    cli("proxy", "remove", mother, "--key", child_key)
    assert "has no proxy" in cli("proxy", "list", "--key", child_key)
    line = refusal(cli, "record", "revoke", "--key", mother_key, record_id, "--reader", doctor)
    assert line.startswith("error (")


def test_a_proxy_is_refused_after_its_expiry(cli: Cli, clock: Clock) -> None:
    child_key, child = patient(cli, "leo")
    carer_key, carer = patient(cli, "carl")
    _, doctor = patient(cli, "ana")
    record_id = (
        cli("record", "put", "--key", child_key, "--patient", child, "--file", CONDITION)
        .strip()
        .splitlines()[-1]
    )
    cli("proxy", "add", carer, "--relation", "carer", "--scope", "read,grant", "--days", "2",
        "--key", child_key)  # fmt: skip
    clock.skip_days(3)
    line = refusal(cli, "record", "grant", "--key", carer_key, record_id, "--reader", doctor)
    assert line.startswith("error (not_a_proxy)") and "expired" in line


def test_bad_scopes_and_relations_are_one_line(cli: Cli) -> None:
    child_key, _ = patient(cli, "leo")
    _, other = patient(cli, "otto")
    add = ("proxy", "add", other, "--key", child_key)
    assert "choose among" in refusal(cli, *add, "--relation", "parent", "--scope", "read,fly")
    assert "is empty" in refusal(cli, *add, "--relation", "parent", "--scope", ",")
    assert "unknown relation" in refusal(cli, *add, "--relation", "uncle", "--scope", "read")
    assert "give --patient" in refusal(cli, "proxy", "list")
