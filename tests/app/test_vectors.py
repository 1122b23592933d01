"""Replay the contract state-transition vectors in tests/app/vectors/: each file's
transaction, applied to its pre-state in its block, gives exactly its post-state and
receipt (or its rejection). Every contract method has a success and a refusal, and the
files are what the generator writes today (`python -m tests.app.make_vectors`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medchain.app import METHODS
from tests.app.make_vectors import VECTORS, apply, block_of, generate, pre_of, tx_of

FILES = sorted(VECTORS.glob("*/*.json"))


def _load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text())
    return vector


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_transaction_gives_exactly_the_post_state(path: Path) -> None:
    vector = _load(path)
    tx = tx_of(vector)
    assert (tx.method, path.parent.name) == (vector["method"], vector["method"])
    outcome = apply(pre_of(vector), block_of(vector), tx)
    if "rejected" in vector:
        assert outcome == {"rejected": vector["rejected"]}
        return
    assert outcome["receipt"] == vector["receipt"]
    assert outcome["post"] == vector["post"]
    assert vector["post"] != vector["pre"]  # even a refusal spends the nonce
    assert vector["receipt"]["ok"] is (path.stem == "ok")


def test_every_method_has_a_success_and_a_refusal() -> None:
    cases: dict[str, set[str]] = {}
    for path in FILES:
        cases.setdefault(path.parent.name, set()).add(path.stem)
    missing = [m for m in sorted(METHODS) if "ok" not in cases.get(m, set())]
    unrefused = [m for m in sorted(METHODS) if not cases.get(m, set()) - {"ok"}]
    assert not missing, f"no success vector for {missing}: add a case to tests/app/make_vectors.py"
    assert not unrefused, f"no refusal vector for {unrefused}"
    assert set(cases) <= set(METHODS), "vectors for a method the contracts no longer have"


def test_regenerating_gives_the_same_files() -> None:
    on_disk = {p.relative_to(VECTORS).as_posix(): p.read_text() for p in FILES}
    assert generate() == on_disk, "run `python -m tests.app.make_vectors` and review the diff"
