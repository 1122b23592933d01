"""A local chain founded by the devnet's organisations, as `medchain init` makes it,
and the helpers the consortium's command tests share: the founders' admin keys, a
registered patient, a refusal's one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import EXAMPLES, Cli

CONDITION = str(EXAMPLES / "condition.json")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    made = Cli(tmp_path)
    made("init")
    return made


def admin(cli: Cli, org_id: str) -> str:
    """The key file of a founding organisation's admin."""
    return str(cli.data / "orgs" / org_id / "admin.key")


def patient(cli: Cli, name: str) -> tuple[str, str]:
    """A new account registered (as every self-registered one is) as a patient: its
    key file and address."""
    path, address = cli.key(name)
    cli("register", "--key", str(path), "--role", "patient", "--name", name)
    return str(path), address


def refusal(cli: Cli, *args: str) -> str:
    """The one line a refused command prints (it exits 1)."""
    lines = cli(*args, ok=False).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]
