"""A local chain founded by the devnet's organisations, as `medchain init` makes it,
and the helpers the command tests share: the command line as a user drives it, the
founders' admin and organisation keys, a registered patient, a credentialed
clinician, a refusal's one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.cli import app
from medchain.crypto import load_keys
from medchain.node import ADMIN_KEY_FILE, ORG_KEY_FILE, ORGS_DIR

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONDITION = str(EXAMPLES / "condition.json")
HOSPITAL = "st-mary"
"""The founding hospital whose admin credentials the tests' clinicians."""
RESEARCH = "northlab"
"""The founding research institute: its account receives research copies."""
runner = CliRunner()


class Cli:
    """Runs `medchain` commands on the chain in `tmp/chain` (made on first use)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "chain"

    def __call__(self, *args: str, ok: bool = True) -> str:
        result = runner.invoke(
            app, [*args, "--data", str(self.data)] if _takes_data(args) else list(args)
        )
        output = result.output
        if ok:
            assert result.exit_code == 0, output
        else:
            assert result.exit_code == 1, output
        return output

    def key(self, name: str) -> tuple[Path, str]:
        path = self.tmp / f"{name}.key"
        address = self("keys", "new", "--out", str(path)).strip()
        return path, address


def _takes_data(args: tuple[str, ...]) -> bool:
    return args[0] not in ("keys",)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    made = Cli(tmp_path)
    made("init")
    return made


def admin(cli: Cli, org_id: str) -> str:
    """The key file of a founding organisation's admin."""
    return str(cli.data / ORGS_DIR / org_id / ADMIN_KEY_FILE)


def org_account(cli: Cli, org_id: str) -> tuple[str, str]:
    """A founding organisation's own account (where an institution acts): its key file
    and address. The chain must exist (`medchain init` writes the file)."""
    path = cli.data / ORGS_DIR / org_id / ORG_KEY_FILE
    return str(path), load_keys(path).address_text


def patient(cli: Cli, name: str, display: str | None = None) -> tuple[str, str]:
    """A new account registered (as every self-registered one is) as a patient: its
    key file and address."""
    path, address = cli.key(name)
    cli("register", "--key", str(path), "--role", "patient", "--name", display or name)
    return str(path), address


def clinician(cli: Cli, name: str, role: str = "doctor", org_id: str = HOSPITAL) -> tuple[str, str]:
    """A new account registered as a patient, then credentialed for `role` by an admin
    of `org_id`, as an organisation takes on staff: its key file and address."""
    path, address = patient(cli, name)
    cli("org", "credential", address, "--role", role, "--name", name, "--key", admin(cli, org_id))
    return path, address


def refusal(cli: Cli, *args: str) -> str:
    """The one line a refused command prints (it exits 1)."""
    lines = cli(*args, ok=False).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]
