"""`medchain docs`: generated blocks rewritten from their commands, checked, and the
project's own pages checked against their commands (the docs-match test: the blocks
marked `generated slow:` run with the slow tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.cli import _docs as docs_module
from medchain.cli import app
from medchain.cli._docs import (
    GeneratedBlock,
    command_argv,
    expected_body,
    find_blocks,
    rewrite,
    stale_blocks,
)
from medchain.types import MedchainError

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
CHEAP = "medchain sim catch-up --q 30 --max-z 2 --runs 50 --markdown"
OTHER = "medchain sim catch-up --q 10 --max-z 1 --runs 50 --markdown"
runner = CliRunner()


def page(tmp_path: Path, *commands: str, slow: str | None = None) -> Path:
    parts = ["# A page\n\nProse before.\n"]
    for command in commands:
        parts.append(f"\n<!-- generated: {command} -->\n<!-- end generated -->\n")
    if slow:
        parts.append(f"\n<!-- generated slow: {slow} -->\nleft alone\n<!-- end generated -->\n")
    parts.append("\nProse after.\n")
    path = tmp_path / "page.md"
    path.write_text("".join(parts), encoding="utf-8")
    return path


@pytest.fixture
def outputs(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What each command prints, without running it (the real commands run below)."""
    printed = {CHEAP: "| a | 1 |\n", OTHER: "| b | 2 |\n"}

    def run(command: str, plot_dir: Path | None = None) -> str:
        if command not in printed:
            raise MedchainError(f"`{command}` failed (exit 1): no such command here")
        return printed[command]

    monkeypatch.setattr(docs_module, "run_command", run)
    return printed


def test_a_rewrite_fills_each_block_from_its_command_and_twice_changes_nothing(
    tmp_path: Path, outputs: dict[str, str]
) -> None:
    path = page(tmp_path, CHEAP, OTHER)
    assert rewrite(path) == 2
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# A page\n\nProse before.\n") and text.endswith("\nProse after.\n")
    first, second = find_blocks(path)
    assert first.body == f"`$ {CHEAP}`\n\n| a | 1 |\n"
    assert second.body == f"`$ {OTHER}`\n\n| b | 2 |\n"
    assert rewrite(path) == 0 and path.read_text(encoding="utf-8") == text
    assert list(stale_blocks([path])) == []


def test_a_check_names_the_block_that_disagrees_and_the_command(
    tmp_path: Path, outputs: dict[str, str]
) -> None:
    path = page(tmp_path, OTHER, CHEAP)
    rewrite(path)
    outputs[CHEAP] = "| a | 3 |\n"  # the command now says something else
    [stale] = stale_blocks([path])
    assert stale.command == CHEAP and stale.line == 11
    result = runner.invoke(app, ["docs", "--check", str(path)])
    assert result.exit_code == 1
    # the console wraps lines: at a space, or inside a path longer than the line
    assert f"{path}:11" in "".join(result.stderr.split())
    said = " ".join(result.stderr.split())
    assert "make docs" in said and CHEAP in said
    assert "| a | 1 |" in path.read_text(encoding="utf-8")  # a check changes nothing


def test_slow_blocks_can_be_left_alone(tmp_path: Path, outputs: dict[str, str]) -> None:
    path = page(tmp_path, CHEAP, slow="medchain sim --nodes 19 --markdown")
    result = runner.invoke(app, ["docs", "--skip-slow", str(path)])
    assert result.exit_code == 0, result.output
    assert "left alone" in path.read_text(encoding="utf-8")
    check = runner.invoke(app, ["docs", "--check", "--skip-slow", str(path)])
    assert check.exit_code == 0 and "matches" in check.stdout
    assert runner.invoke(app, ["docs", "--check", str(path)]).exit_code == 1


def test_a_real_command_fills_a_block_and_a_failing_one_is_a_clear_error(tmp_path: Path) -> None:
    path = page(tmp_path, CHEAP)
    assert rewrite(path) == 1
    [block] = find_blocks(path)
    assert block.body.startswith(f"`$ {CHEAP}`\n\n| q | z | Nakamoto's formula |")
    assert "| 0.3 | 2 | 0.4457171 |" in block.body
    failing = page(tmp_path, "medchain sim catch-up --q 50 --markdown")
    result = runner.invoke(app, ["docs", str(failing)])
    assert result.exit_code == 1 and "failed" in result.output and "use 49 or 51" in result.output


def test_bad_blocks_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "open.md"
    path.write_text(f"<!-- generated: {CHEAP} -->\nno end\n", encoding="utf-8")
    with pytest.raises(MedchainError, match="no '<!-- end generated -->'"):
        find_blocks(path)
    with pytest.raises(MedchainError, match="must start with 'medchain'"):
        command_argv("rm -rf docs")


def test_a_check_writes_plots_elsewhere() -> None:
    argv = command_argv("medchain sim --plot docs/img/attack.png --markdown", Path("/tmp/x"))
    assert argv[-3:] == ["--plot", "/tmp/x/attack.png", "--markdown"]


def test_the_consensus_page_has_cheap_and_slow_blocks() -> None:
    blocks = find_blocks(ROOT / "docs" / "CONSENSUS.md")
    assert any(b.slow for b in blocks) and any(not b.slow for b in blocks)
    assert all(b.command.startswith("medchain sim") for b in blocks)


def _checked(block: GeneratedBlock) -> object:
    marks = [pytest.mark.slow] if block.slow else []
    return pytest.param(block, id=f"{block.path.name}:{block.line}", marks=marks)


@pytest.mark.parametrize("block", [_checked(b) for p in PAGES for b in find_blocks(p)])
def test_the_page_says_what_its_command_says(block: GeneratedBlock, tmp_path: Path) -> None:
    expected = expected_body(block, tmp_path)
    assert block.body == expected, (
        f"{block.where}: the page and `{block.command}` disagree; "
        "run `make docs` (or that command) and commit the page"
    )
