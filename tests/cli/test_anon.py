"""`medchain anon` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medchain.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_open_submit_list(tmp_path: Path) -> None:
    data = ["--data", str(tmp_path / "chain")]

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, *data])
        assert result.exit_code == 0, result.output
        return result.output

    keys = []
    for i in range(6):
        path = tmp_path / f"p{i}.key"
        assert runner.invoke(app, ["keys", "new", "--out", str(path)]).exit_code == 0
        run("register", "--key", str(path), "--role", "patient", "--name", f"P{i}")
        keys.append(path)
    lab = tmp_path / "lab.key"
    runner.invoke(app, ["keys", "new", "--out", str(lab)])
    run("register", "--key", str(lab), "--role", "institution", "--name", "Lab")
    run("anon", "open", "--key", str(lab), "--scope", "study", "--min-ring", "5")
    out = run(
        "anon",
        "submit",
        "--key",
        str(keys[2]),
        "--scope",
        "study",
        "--file",
        str(EXAMPLES / "condition.json"),
        "--ring-size",
        "5",
    )
    assert "anonymously" in out
    again = runner.invoke(
        app,
        [
            "anon",
            "submit",
            "--key",
            str(keys[2]),
            "--scope",
            "study",
            "--file",
            str(EXAMPLES / "condition.json"),
            "--ring-size",
            "5",
            *data,
        ],
    )
    assert again.exit_code == 1 and "key_image_reused" in again.output
    listed = json.loads(run("anon", "list", "--key", str(lab), "--scope", "study"))
    assert len(listed) == 1 and listed[0]["ring_size"] == 5
    assert listed[0]["resource"]["resourceType"] == "Condition"
