"""Each package's `__all__` is its face: what the other packages import from it, all of
it there to import. A module crosses into another package only through that package's
public names, never into its private `_modules` (in the manner of trio's test_exports)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import medchain

SOURCE = Path(medchain.__file__).parent
PACKAGES = sorted(m.name for m in pkgutil.iter_modules([str(SOURCE)]) if m.ispkg)
EXPORTING = [p for p in PACKAGES if hasattr(importlib.import_module(f"medchain.{p}"), "__all__")]
"""The packages with a public face; the others (the CLI) are imported by no package."""


def modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, file) of every module in medchain."""
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def package_of(module: str) -> str:
    """The top package a dotted name is in: medchain.node._fork -> node."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "medchain" else ""


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) of each absolute import of medchain in a file; `import
    medchain.x.y` counts as importing no names from medchain.x.y."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "medchain":
                yield node.lineno, node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "medchain":
                    yield node.lineno, alias.name, []


def crossings() -> Iterator[tuple[str, str, list[str]]]:
    """(where, imported module, names) of every import from one package into another.
    The root's private helpers (medchain._fs) belong to all of medchain."""
    for name, path in modules():
        for line, module, names in imports(path):
            target = package_of(module)
            if target and not target.startswith("_") and target != package_of(name):
                yield f"{path.relative_to(SOURCE.parent)}:{line}", module, names


def test_no_module_reaches_into_another_packages_private_modules() -> None:
    private = [
        f"{where}: {module} {names}"
        for where, module, names in crossings()
        if any(part.startswith("_") for part in module.split(".")[2:])
        or (module.count(".") == 1 and any(n.startswith("_") for n in names))
    ]
    assert private == []


def test_what_other_packages_import_is_in_the_packages_all() -> None:
    missing = []
    for where, module, names in crossings():
        if module.count(".") != 1:
            continue  # a private module, reported by the test above
        exported = set(getattr(importlib.import_module(module), "__all__", ()))
        missing += [f"{where}: {module}.{n}" for n in names if n not in exported]
    assert missing == []


@pytest.mark.parametrize("package", EXPORTING)
def test_every_name_in_all_exists(package: str) -> None:
    module = importlib.import_module(f"medchain.{package}")
    listed = module.__all__
    assert len(set(listed)) == len(listed), "a name listed twice"
    assert [name for name in listed if not hasattr(module, name)] == []
