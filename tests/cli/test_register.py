"""`medchain register` gives a new patient an emergency policy by default when the chain
has at least two member organisations to split the key among; `--no-emergency` opts out."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner

from medchain.app import Role
from medchain.cli import app
from medchain.crypto import AccountKeys, load_keys, save_keys
from medchain.node import LocalChain
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator
from tests.api.harness import Org

runner = CliRunner()
ORGS = tuple(Org.generate(f"org-{name}") for name in ("a", "b", "c"))


def _chain(data: Path, orgs: tuple[Org, ...]) -> None:
    validator = AccountKeys.generate()
    genesis = Genesis(
        "medchain-test",
        1_700_000_000_000,
        ChainParams(),
        allocations=(Allocation(validator.address, 10**9),),
        validators=(
            GenesisValidator(
                validator.public_key, "v0", organisation=orgs[0].org_id if orgs else ""
            ),
        ),
        organisations=tuple(org.genesis() for org in orgs),
    )
    LocalChain.create(data, genesis, validator).close()


def _register(tmp: Path, data: Path, *flags: str) -> tuple[bytes, str]:
    key = tmp / f"patient{len(list(tmp.glob('*.key')))}.key"
    save_keys(key, AccountKeys.generate())
    args = ["register", "--key", str(key), "--role", "patient", "--name", "Jane", *flags]
    result = runner.invoke(app, [*args, "--data", str(data)])
    assert result.exit_code == 0, result.output
    return load_keys(key).address, result.output


def test_a_patient_gets_an_emergency_policy_unless_opting_out(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    _chain(data, ORGS)
    on, said = _register(tmp_path, data)
    assert "emergency access on (any 2 of 3 organisations answer)" in said
    off, said_off = _register(tmp_path, data, "--no-emergency")
    assert "emergency" not in said_off
    with closing(LocalChain.open(data)) as chain:
        policy = chain.emergency_policy(on)
        assert policy is not None and policy.enabled and policy.threshold == 2
        assert [s.org_id for s in policy.shares] == [org.org_id for org in ORGS]
        assert chain.emergency_policy(off) is None
        identity = chain.identity(off)
        assert identity is not None and identity.role is Role.PATIENT


def test_with_fewer_than_two_organisations_there_is_no_policy(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    _chain(data, ORGS[:1])
    patient, said = _register(tmp_path, data)
    assert "no emergency policy: the chain has fewer than two member organisations" in said
    with closing(LocalChain.open(data)) as chain:
        assert chain.emergency_policy(patient) is None


def test_the_help_names_the_opt_out() -> None:
    result = runner.invoke(app, ["register", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--no-emergency" in result.output
