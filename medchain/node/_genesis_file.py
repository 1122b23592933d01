"""Genesis documents on disk: JSON an operator can read and review before signing off."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medchain.crypto import format_address, parse_address
from medchain.types import (
    Allocation,
    ChainParams,
    ForkOrigin,
    Genesis,
    GenesisValidator,
    MedchainError,
    StateEntry,
    encode,
    tagged_hash,
)
from medchain.types import GenesisError as GenesisError  # re-exported by medchain.node


@dataclass(frozen=True, slots=True)
class _GenesisV1:
    """The genesis document before forks existed. A genesis that forks nothing still
    hashes as this, so the genesis hash every data directory stores stays valid."""

    chain_id: str
    time_ms: int
    params: ChainParams
    allocations: tuple[Allocation, ...]
    validators: tuple[GenesisValidator, ...]


def genesis_hash(genesis: Genesis) -> bytes:
    if genesis.fork_of or genesis.state:
        return tagged_hash("medchain/genesis", encode(genesis))
    legacy = _GenesisV1(
        genesis.chain_id, genesis.time_ms, genesis.params, genesis.allocations, genesis.validators
    )
    return tagged_hash("medchain/genesis", encode(legacy))


def genesis_to_json(genesis: Genesis) -> str:
    """The fork fields appear only in a fork's genesis (bytes as hex), so the document
    of a new chain reads as it always did."""
    document: dict[str, Any] = {
        "chain_id": genesis.chain_id,
        "time_ms": genesis.time_ms,
        "params": dataclasses.asdict(genesis.params),
        "allocations": [
            {"address": format_address(a.address), "amount": a.amount} for a in genesis.allocations
        ],
        "validators": [
            {"public_key": v.public_key.hex(), "name": v.name, "power": v.power}
            for v in genesis.validators
        ],
    }
    origin = genesis.origin
    if origin is not None:
        document["fork_of"] = {
            "chain_id": origin.chain_id,
            "height": origin.height,
            "block_hash": origin.block_hash.hex(),
            "state_root": origin.state_root.hex(),
        }
    if genesis.state:
        document["state"] = [{"key": e.key.hex(), "value": e.value.hex()} for e in genesis.state]
    return json.dumps(document, indent=2) + "\n"


def _fork_of(doc: dict[str, Any]) -> tuple[ForkOrigin, ...]:
    origin = doc.get("fork_of")
    if origin is None:
        return ()
    return (
        ForkOrigin(
            chain_id=str(origin["chain_id"]),
            height=int(origin["height"]),
            block_hash=bytes.fromhex(origin["block_hash"]),
            state_root=bytes.fromhex(origin["state_root"]),
        ),
    )


def genesis_from_json(text: str, source: str = "genesis") -> Genesis:
    try:
        doc: dict[str, Any] = json.loads(text)
        params = ChainParams(**doc.get("params", {}))
        return Genesis(
            chain_id=str(doc["chain_id"]),
            time_ms=int(doc["time_ms"]),
            params=params,
            allocations=tuple(
                Allocation(parse_address(a["address"]), int(a["amount"]))
                for a in doc.get("allocations", [])
            ),
            validators=tuple(
                GenesisValidator(bytes.fromhex(v["public_key"]), str(v["name"]), int(v["power"]))
                for v in doc.get("validators", [])
            ),
            fork_of=_fork_of(doc),
            state=tuple(
                StateEntry(bytes.fromhex(e["key"]), bytes.fromhex(e["value"]))
                for e in doc.get("state", [])
            ),
        )
    except (ValueError, KeyError, TypeError, AttributeError, MedchainError) as exc:
        raise GenesisError(
            f"{source} is not a valid genesis document ({exc}); "
            "restore it from the network's published genesis.json"
        ) from exc


def write_genesis(path: Path, genesis: Genesis) -> None:
    path.write_text(genesis_to_json(genesis))


def read_genesis(path: Path) -> Genesis:
    try:
        text = path.read_text()
    except OSError as exc:
        raise GenesisError(f"cannot read {path}: {exc.strerror}") from exc
    return genesis_from_json(text, str(path))
