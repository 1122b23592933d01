"""Compile Anchor.vy into the checked-in artifact anchor_contract.json.

Nodes load the artifact, so they need no compiler; vyper is a dev dependency, pinned
so that a fresh compile reproduces the artifact byte for byte (a test checks it).
Run `python -m medchain.anchor.build` after changing the contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("Anchor.vy")
ARTIFACT = Path(__file__).with_name("anchor_contract.json")


def compile_contract(source: Path = SOURCE) -> dict[str, Any]:
    """The artifact's content: abi, deployment bytecode and the compiler that made them."""
    # A dev dependency, imported here so the runtime never needs it; it ships no types.
    import vyper  # type: ignore[import-untyped]

    output = vyper.compile_code(source.read_text(), output_formats=["abi", "bytecode"])
    return {
        "contract": source.stem,
        "vyper": vyper.__version__,
        "abi": output["abi"],
        "bytecode": output["bytecode"],
    }


def render(artifact: dict[str, Any]) -> str:
    """Deterministic JSON: sorted keys, fixed indentation, one trailing newline."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main() -> int:
    ARTIFACT.write_text(render(compile_contract()))
    print(f"wrote {ARTIFACT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
