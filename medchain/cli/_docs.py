"""`medchain docs`: every figure a command produces sits in the docs between
`<!-- generated: medchain … -->` and `<!-- end generated -->`; this rewrites each such
block from its command's output (`make docs`), or checks that the page still says what
the command says. A block marked `generated slow:` takes minutes; `--skip-slow` leaves
those alone."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from medchain.cli._common import console, err_console, reports_errors
from medchain.types import MedchainError

BLOCK = re.compile(
    r"^<!-- generated(?P<slow> slow)?: (?P<command>[^\n]*?) -->\n"
    r"(?P<body>.*?)"
    r"^<!-- end generated -->$",
    re.MULTILINE | re.DOTALL,
)
OPENING = re.compile(r"^<!-- generated", re.MULTILINE)
PLOT = "--plot"
SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
"""The directory holding this `medchain` package."""


@dataclass(frozen=True)
class GeneratedBlock:
    path: Path
    line: int
    command: str
    slow: bool
    body: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def find_blocks(path: Path) -> list[GeneratedBlock]:
    """The page's generated blocks, in order; an opening marker without its end is an error."""
    text = path.read_text(encoding="utf-8")
    blocks = [
        GeneratedBlock(
            path,
            text.count("\n", 0, m.start()) + 1,
            m.group("command").strip(),
            m.group("slow") is not None,
            m.group("body"),
        )
        for m in BLOCK.finditer(text)
    ]
    if len(OPENING.findall(text)) != len(blocks):
        raise MedchainError(
            f"{path}: a '<!-- generated: COMMAND -->' line has no '<!-- end generated -->' "
            "after it; close every generated block"
        )
    return blocks


def command_argv(command: str, plot_dir: Path | None = None) -> list[str]:
    """The `medchain …` command as this interpreter runs it; with `plot_dir`, a plot
    it writes goes there instead (a check must not touch the docs' images)."""
    argv = shlex.split(command)
    if not argv or argv[0] != "medchain":
        raise MedchainError(f"generated block command {command!r} must start with 'medchain'")
    if plot_dir is not None:
        for i, arg in enumerate(argv[:-1]):
            if arg == PLOT:
                argv[i + 1] = str(plot_dir / Path(argv[i + 1]).name)
    return [sys.executable, "-m", "medchain.cli", *argv[1:]]


def run_command(command: str, plot_dir: Path | None = None) -> str:
    """What the command prints on stdout, run by this very medchain package; a failing
    command is a one-line error."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE_ROOT, env.get("PYTHONPATH")]))
    done = subprocess.run(command_argv(command, plot_dir), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise MedchainError(f"`{command}` failed (exit {done.returncode}): {last}")
    return done.stdout


def render(command: str, output: str) -> str:
    """A block's body: the command a reader can run, then what it printed."""
    return f"`$ {command}`\n\n{output.strip()}\n"


def expected_body(block: GeneratedBlock, plot_dir: Path | None = None) -> str:
    return render(block.command, run_command(block.command, plot_dir))


def rewrite(path: Path, skip_slow: bool = False) -> int:
    """Rewrite the page's blocks from their commands; how many changed."""
    text = path.read_text(encoding="utf-8")
    changed = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal changed
        if skip_slow and match.group("slow"):
            return match.group(0)
        command = match.group("command").strip()
        body = render(command, run_command(command))
        changed += body != match.group("body")
        slow = match.group("slow") or ""
        return f"<!-- generated{slow}: {command} -->\n{body}<!-- end generated -->"

    find_blocks(path)  # every marker closed before anything is run
    updated = BLOCK.sub(replace, text)
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return changed


def stale_blocks(paths: Sequence[Path], skip_slow: bool = False) -> Iterator[GeneratedBlock]:
    """The blocks whose page and command disagree."""
    with tempfile.TemporaryDirectory(prefix="medchain-docs-") as plots:
        for path in paths:
            for block in find_blocks(path):
                if skip_slow and block.slow:
                    continue
                if block.body != expected_body(block, Path(plots)):
                    yield block


def _pages(paths: list[Path] | None) -> list[Path]:
    if paths:
        return paths
    found = sorted(Path("docs").glob("*.md"))
    if not found:
        raise MedchainError("no docs/*.md here: run from the repository's root or name the pages")
    return found


@reports_errors
def docs(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Pages (default: docs/*.md).", dir_okay=False, exists=True),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Change nothing: fail if a page and its command disagree.")
    ] = False,
    skip_slow: Annotated[
        bool, typer.Option(help="Leave the blocks marked 'generated slow:' alone.")
    ] = False,
) -> None:
    """Rewrite the docs' generated blocks from their commands (`make docs`)."""
    pages = _pages(paths)
    if check:
        stale = list(stale_blocks(pages, skip_slow))
        for block in stale:
            err_console.print(
                f"{block.where}: the page and `{block.command}` disagree; run `make docs`"
            )
        if stale:
            raise typer.Exit(1)
        console.print(f"{len(pages)} page(s): every generated block matches its command")
        return
    for page in pages:
        changed = rewrite(page, skip_slow)
        console.print(f"{page}: {changed} block(s) rewritten")
