"""The layering `make lint` checks: import-linter's contracts (pyproject.toml,
[tool.importlinter]) hold on this tree and break on a wrong-way import; and loading the
SDK loads no node code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LAYERS = "medchain's packages import downward only"
SDK = "the SDK loads no node code (it talks to a node over HTTP)"
ACYCLIC = "no import cycles between the modules of a package"
PRIVATE = "a package's private modules are imported only inside it"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts on the medchain package in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "medchain", tmp_path / "medchain")
    result = lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in (LAYERS, SDK, ACYCLIC, PRIVATE):
        assert f"{contract} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract", "finding"),
    [
        (
            "types/_wrong.py",
            "import medchain.cli\n",
            LAYERS,
            "medchain.types is not allowed to import medchain.cli",
        ),
        (
            "node/_wrong.py",
            "from medchain.bench import run_ledger_bench\n",
            LAYERS,
            "medchain.node is not allowed to import medchain.bench",
        ),
        (
            "client/_wrong.py",
            "from medchain.node import LocalChain\n",
            SDK,
            "medchain.client is not allowed to import medchain.node",
        ),
        (
            "gateway/_wrong.py",
            "from medchain.client._envelope import seal\n",
            PRIVATE,
            "medchain.gateway._wrong -> medchain.client._envelope",
        ),
        (
            "client/_wrong.py",
            "from medchain.client._sdk import MedchainClient\n",
            ACYCLIC,
            "._wrong -> ._sdk",
        ),
    ],
)
def test_a_wrong_way_import_fails_the_lint(
    tmp_path: Path, module: str, source: str, contract: str, finding: str
) -> None:
    shutil.copytree(ROOT / "medchain", tmp_path / "medchain")
    wrong = tmp_path / "medchain" / module
    wrong.write_text(source)
    if contract == ACYCLIC:  # a cycle: the SDK module imports the wrong one back
        sdk = tmp_path / "medchain" / "client" / "_sdk.py"
        sdk.write_text(sdk.read_text() + "\nfrom medchain.client import _wrong  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
    assert finding in result.stdout


def test_importing_the_sdk_loads_no_node_code() -> None:
    """A program using the SDK (a script, the gateway) does not pay for the node's
    packages, and cannot reach into them."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, medchain.client; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert "medchain.client" in loaded
    node_code = {"api", "node", "anchor", "consensus", "mempool", "p2p", "store"}
    packages = {m.split(".")[1] for m in loaded if m.startswith("medchain.")}
    assert packages & node_code == set()
