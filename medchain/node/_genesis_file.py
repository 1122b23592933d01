"""Genesis documents on disk: JSON an operator can read and review before signing off."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from medchain.crypto import format_address, parse_address
from medchain.types import (
    Allocation,
    ChainParams,
    Genesis,
    GenesisValidator,
    MedchainError,
    encode,
    tagged_hash,
)


class GenesisError(MedchainError):
    code = "bad_genesis"


def genesis_hash(genesis: Genesis) -> bytes:
    return tagged_hash("medchain/genesis", encode(genesis))


def genesis_to_json(genesis: Genesis) -> str:
    document = {
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
    return json.dumps(document, indent=2) + "\n"


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
