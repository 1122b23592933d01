"""`medchain anon` as a user runs it."""

from __future__ import annotations

import json

from tests.cli.consortium import CONDITION, RESEARCH, Cli, cli, org_account, patient

__all__ = ["cli"]


def test_open_submit_list(cli: Cli) -> None:
    keys = [patient(cli, f"p{i}")[0] for i in range(6)]
    lab, _ = org_account(cli, RESEARCH)
    cli("anon", "open", "--key", lab, "--scope", "study", "--min-ring", "5")
    submit = ("anon", "submit", "--key", keys[2], "--scope", "study", "--file", CONDITION)
    assert "anonymously" in cli(*submit, "--ring-size", "5")
    again = cli(*submit, "--ring-size", "5", ok=False)
    assert "key_image_reused" in again
    listed = json.loads(cli("anon", "list", "--key", lab, "--scope", "study"))
    assert len(listed) == 1 and listed[0]["ring_size"] == 5
    assert listed[0]["resource"]["resourceType"] == "Condition"
