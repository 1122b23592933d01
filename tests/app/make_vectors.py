"""Contract state-transition vectors, as the Ethereum consensus specs export theirs:
for each case a pre-state, one transaction and the block it runs in, and what
`apply_tx` makes of them (the post-state and the receipt, or the rejection).

    python -m tests.app.make_vectors      # rewrites tests/app/vectors/

Each case builds its pre-state by running ordinary transactions on a fresh ledger
from fixed keys, so the files are a function of the contracts alone: regenerating on
an unchanged tree gives the same bytes (tests/app/test_vectors.py checks that, and
replays every file).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from medchain.app import BlockContext, State, TxRejected, apply_tx
from medchain.types import ChainParams, Receipt, Tx, decode, decode_tx_bytes, encode
from tests.app.vector_cases import CASES, Case, fresh_world

VECTORS = Path(__file__).parent / "vectors"


# -- running a case and writing it ------------------------------------------------------


def hex_map(state: dict[bytes, bytes]) -> dict[str, str]:
    return {k.hex(): state[k].hex() for k in sorted(state)}


def apply(pre: dict[bytes, bytes], block: BlockContext, tx: Tx) -> dict[str, Any]:
    """What `apply_tx` makes of `tx` on `pre`: the post-state and the receipt, or the
    rejection's code (a rejected transaction changes nothing)."""
    state = State(pre)
    state.begin_block()
    try:
        receipt = apply_tx(state, block, tx)
    except TxRejected as exc:
        state.discard_block()
        return {"rejected": exc.code}
    state.end_block()
    return {"receipt": show_receipt(receipt), "post": hex_map(state.committed())}


def show_receipt(receipt: Receipt) -> dict[str, Any]:
    return {
        "ok": receipt.ok,
        "code": receipt.code,
        "message": receipt.message,
        "events": [
            {"kind": e.kind, "attributes": [[a.key, a.value] for a in e.attributes]}
            for e in receipt.events
        ],
    }


def block_of(vector: dict[str, Any]) -> BlockContext:
    block = vector["block"]
    return BlockContext(
        block["chain_id"],
        block["height"],
        block["time_ms"],
        bytes.fromhex(block["proposer"]),
        decode(ChainParams, bytes.fromhex(block["params"])),
    )


def tx_of(vector: dict[str, Any]) -> Tx:
    return decode_tx_bytes(bytes.fromhex(vector["tx"]))


def pre_of(vector: dict[str, Any]) -> dict[bytes, bytes]:
    return {bytes.fromhex(k): bytes.fromhex(v) for k, v in vector["pre"].items()}


@contextmanager
def fixed_ring_nonces() -> Iterator[None]:
    """Ring signatures hedge their nonces with fresh randomness; a vector file must be
    the same on every run, so the generator feeds them a fixed 'fresh' value (the
    nonce still depends on the secret and the message)."""
    with mock.patch("secrets.token_bytes", lambda n: hashlib.sha256(b"vectors").digest()[:n]):
        yield


def run_case(found: Case) -> dict[str, Any]:
    world = fresh_world()
    with fixed_ring_nonces():
        tx = found.build(world)
    block = world.context()
    vector: dict[str, Any] = {
        "method": found.method,
        "case": found.name,
        "block": {
            "chain_id": block.chain_id,
            "height": block.height,
            "time_ms": block.time_ms,
            "proposer": block.proposer.hex(),
            "params": encode(block.params).hex(),
        },
        "pre": hex_map(world.ledger.state.committed()),
        "tx": tx.encoded.hex(),
    }
    outcome = apply(world.ledger.state.committed(), block, tx)
    got = outcome.get("rejected") or outcome["receipt"]["code"]
    if got != found.expect:
        why = f": {outcome['receipt']['message']}" if "receipt" in outcome else ""
        expected = found.expect or "success"
        raise AssertionError(
            f"{found.method}/{found.name}: expected {expected}, got {got or 'success'}{why}"
        )
    return vector | outcome


def render(vector: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, one layout, a final newline."""
    return json.dumps(vector, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def generate() -> dict[str, str]:
    """Every vector file's path (under `vectors/`) and its text."""
    files: dict[str, str] = {}
    for found in CASES:
        path = f"{found.method}/{found.name}.json"
        if path in files:
            raise AssertionError(f"two cases named {path}")
        files[path] = render(run_case(found))
    return files


def main() -> int:
    files = generate()
    for old in VECTORS.glob("*/*.json"):
        if old.relative_to(VECTORS).as_posix() not in files:
            old.unlink()
    for path, text in sorted(files.items()):
        target = VECTORS / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {len(files)} vectors to {VECTORS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
