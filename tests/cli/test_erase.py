"""`medchain record erase`: asks to confirm unless --yes, refuses a reader, and
`record show` / `record list` mark the record erased; a later `record get` fails
with the clear error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medchain.cli import app
from tests.cli.consortium import EXAMPLES, Cli, cli, clinician, patient

__all__ = ["cli"]

runner = CliRunner()


def test_erase_a_record(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, alice_addr = patient(cli, "alice")
    bob, _ = clinician(cli, "bob")
    put = cli(
        "record", "put", "--key", bob, "--patient", alice_addr,
        "--file", str(EXAMPLES / "observation-heart-rate.json"),
    )  # fmt: skip
    record_id = put.strip().splitlines()[-1]

    command = ["record", "erase", "--key", str(alice), record_id, "--data", str(cli.data)]
    scripted = runner.invoke(app, command)  # no terminal to ask on, and no --yes
    assert scripted.exit_code == 1 and "pass --yes" in scripted.output
    monkeypatch.setattr("medchain.cli._erase.on_a_terminal", lambda: True)
    declined = runner.invoke(app, command, input="n\n")
    assert declined.exit_code == 1 and "Erase record" in declined.output
    assert "erased" not in cli("record", "show", record_id)

    assert "not_owner" in cli("record", "erase", "--key", bob, record_id, "--yes", ok=False)
    confirmed = runner.invoke(app, command, input="y\n")
    assert confirmed.exit_code == 0 and f"record {record_id} erased" in confirmed.output

    shown = cli("record", "show", record_id)
    assert "erased:" in shown and "(height " in shown
    assert f"{record_id}  Observation  v1  erased" in cli("record", "list", "--patient", alice_addr)
    failed = cli("record", "get", "--key", str(alice), record_id, ok=False)
    assert "record_erased" in failed and "erased by" in failed
    again = cli("record", "erase", "--key", str(alice), record_id, "--yes", ok=False)
    assert "record_erased" in again
