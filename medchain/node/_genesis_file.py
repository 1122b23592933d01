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
    GenesisOrganisation,
    GenesisValidator,
    MedchainError,
    StateEntry,
    encode,
    tagged_hash,
)
from medchain.types import GenesisError as GenesisError  # re-exported by medchain.node


@dataclass(frozen=True, slots=True)
class _ChainParamsV1:
    """The parameters before the devices contract. A genesis whose device parameters
    are the defaults hashes its parameters as this, so stored genesis hashes hold."""

    consensus: str
    min_fee: int
    max_tx_bytes: int
    max_block_txs: int
    max_readers: int
    unbonding_blocks: int
    max_votes_per_voter: int
    max_ring_size: int
    block_reward: int
    reward_vesting_blocks: int
    slash_bps: int
    ban_blocks: int
    primary_candidates: int
    committee_size: int
    epoch_blocks: int
    checkpoint_interval: int


@dataclass(frozen=True, slots=True)
class _ChainParamsV2:
    """The parameters with the devices contract's, before the per-block cap on
    anonymous transactions. A genesis leaving that cap at its default hashes its
    parameters as this (or as V1), so stored genesis hashes hold."""

    consensus: str
    min_fee: int
    max_tx_bytes: int
    max_block_txs: int
    max_readers: int
    unbonding_blocks: int
    max_votes_per_voter: int
    max_ring_size: int
    block_reward: int
    reward_vesting_blocks: int
    slash_bps: int
    ban_blocks: int
    primary_candidates: int
    committee_size: int
    epoch_blocks: int
    checkpoint_interval: int
    device_strikes_restrict: int
    device_strikes_ban: int
    device_restrict_blocks: int


@dataclass(frozen=True, slots=True)
class _ChainParamsV3:
    """The parameters before organisations (`proposal_blocks`)."""

    consensus: str
    min_fee: int
    max_tx_bytes: int
    max_block_txs: int
    max_readers: int
    unbonding_blocks: int
    max_votes_per_voter: int
    max_ring_size: int
    block_reward: int
    reward_vesting_blocks: int
    slash_bps: int
    ban_blocks: int
    primary_candidates: int
    committee_size: int
    epoch_blocks: int
    checkpoint_interval: int
    device_strikes_restrict: int
    device_strikes_ban: int
    device_restrict_blocks: int
    max_block_anonymous_txs: int


@dataclass(frozen=True, slots=True)
class _GenesisValidatorV1:
    """A validator before organisations."""

    public_key: bytes
    name: str
    power: int


_DEFAULT_PARAMS = ChainParams()
_Params = _ChainParamsV1 | _ChainParamsV2 | _ChainParamsV3 | ChainParams


def _hashed_params(params: ChainParams) -> _Params:
    """`params` in the oldest layout that loses nothing of them: one that holds every
    parameter set to other than its default."""
    for layout in (_ChainParamsV1, _ChainParamsV2, _ChainParamsV3):
        names = tuple(f.name for f in dataclasses.fields(layout))
        if all(
            getattr(params, f.name) == getattr(_DEFAULT_PARAMS, f.name)
            for f in dataclasses.fields(ChainParams)
            if f.name not in names
        ):
            return layout(*(getattr(params, name) for name in names))
    return params


@dataclass(frozen=True, slots=True)
class _GenesisV1:
    """The genesis document before forks existed. A genesis that forks nothing still
    hashes as this, so the genesis hash every data directory stores stays valid."""

    chain_id: str
    time_ms: int
    params: _ChainParamsV1
    allocations: tuple[Allocation, ...]
    validators: tuple[_GenesisValidatorV1, ...]


@dataclass(frozen=True, slots=True)
class _GenesisV2:
    """A genesis that forks nothing but sets parameters V1 did not have."""

    chain_id: str
    time_ms: int
    params: _ChainParamsV2
    allocations: tuple[Allocation, ...]
    validators: tuple[_GenesisValidatorV1, ...]


@dataclass(frozen=True, slots=True)
class _GenesisV3:
    """A genesis that forks nothing but sets parameters V2 did not have."""

    chain_id: str
    time_ms: int
    params: _ChainParamsV3
    allocations: tuple[Allocation, ...]
    validators: tuple[_GenesisValidatorV1, ...]


@dataclass(frozen=True, slots=True)
class _GenesisV1Params:
    """A fork's genesis with V1 parameters (see `_hashed_params`)."""

    chain_id: str
    time_ms: int
    params: _ChainParamsV1
    allocations: tuple[Allocation, ...]
    validators: tuple[_GenesisValidatorV1, ...]
    fork_of: tuple[ForkOrigin, ...]
    state: tuple[StateEntry, ...]


@dataclass(frozen=True, slots=True)
class _GenesisV2Params:
    """A fork's genesis with V2 parameters (see `_hashed_params`)."""

    chain_id: str
    time_ms: int
    params: _ChainParamsV2
    allocations: tuple[Allocation, ...]
    validators: tuple[_GenesisValidatorV1, ...]
    fork_of: tuple[ForkOrigin, ...]
    state: tuple[StateEntry, ...]


@dataclass(frozen=True, slots=True)
class _GenesisV3Params:
    """A fork's genesis with V3 parameters (see `_hashed_params`)."""

    chain_id: str
    time_ms: int
    params: _ChainParamsV3
    allocations: tuple[Allocation, ...]
    validators: tuple[_GenesisValidatorV1, ...]
    fork_of: tuple[ForkOrigin, ...]
    state: tuple[StateEntry, ...]


def genesis_hash(genesis: Genesis) -> bytes:
    """A hash that every later release computes alike for the same document: the
    parameters and fields added since a genesis was written, left at their defaults,
    are hashed as if they did not exist."""
    g = genesis
    params = _hashed_params(g.params)
    uses_orgs = bool(g.organisations) or any(v.organisation for v in g.validators)
    if uses_orgs or isinstance(params, ChainParams):
        return tagged_hash("medchain/genesis", encode(g))
    validators: Any = tuple(
        _GenesisValidatorV1(v.public_key, v.name, v.power) for v in g.validators
    )
    layout: object
    if g.fork_of or g.state:
        fork_layouts: dict[type[Any], Any] = {
            _ChainParamsV1: _GenesisV1Params,
            _ChainParamsV2: _GenesisV2Params,
            _ChainParamsV3: _GenesisV3Params,
        }
        layout = fork_layouts[type(params)](
            g.chain_id, g.time_ms, params, g.allocations, validators, g.fork_of, g.state
        )
    else:
        new_layouts: dict[type[Any], Any] = {
            _ChainParamsV1: _GenesisV1,
            _ChainParamsV2: _GenesisV2,
            _ChainParamsV3: _GenesisV3,
        }
        layout = new_layouts[type(params)](g.chain_id, g.time_ms, params, g.allocations, validators)
    return tagged_hash("medchain/genesis", encode(layout))


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
        "validators": [_validator_json(v) for v in genesis.validators],
    }
    if genesis.organisations:
        document["organisations"] = [_organisation_json(o) for o in genesis.organisations]
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


def _validator_json(validator: GenesisValidator) -> dict[str, Any]:
    """A validator's entry; `organisation` only on a chain with organisations."""
    entry: dict[str, Any] = {
        "public_key": validator.public_key.hex(),
        "name": validator.name,
        "power": validator.power,
    }
    if validator.organisation:
        entry["organisation"] = validator.organisation
    return entry


def _organisation_json(org: GenesisOrganisation) -> dict[str, Any]:
    return {
        "org_id": org.org_id,
        "name": org.name,
        "kind": org.kind,
        "admins": [admin.hex() for admin in org.admins],
        "public_key": org.public_key.hex(),
        "encryption_key": org.encryption_key.hex(),
    }


def _validator_from(entry: dict[str, Any]) -> GenesisValidator:
    return GenesisValidator(
        bytes.fromhex(entry["public_key"]),
        str(entry["name"]),
        int(entry["power"]),
        str(entry.get("organisation", "")),
    )


def _organisation_from(entry: dict[str, Any]) -> GenesisOrganisation:
    if not isinstance(entry["admins"], list):
        raise TypeError("an organisation's admins are a list of hex keys")
    return GenesisOrganisation(
        org_id=str(entry["org_id"]),
        name=str(entry["name"]),
        kind=str(entry["kind"]),
        admins=tuple(bytes.fromhex(admin) for admin in entry["admins"]),
        public_key=bytes.fromhex(entry["public_key"]),
        encryption_key=bytes.fromhex(entry["encryption_key"]),
    )


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
            validators=tuple(_validator_from(v) for v in doc.get("validators", [])),
            fork_of=_fork_of(doc),
            state=tuple(
                StateEntry(bytes.fromhex(e["key"]), bytes.fromhex(e["value"]))
                for e in doc.get("state", [])
            ),
            organisations=tuple(_organisation_from(o) for o in doc.get("organisations", [])),
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


def organisation_from_json(entry: dict[str, Any]) -> GenesisOrganisation:
    """An organisation as genesis.json writes it (and `medchain org propose` reads it);
    KeyError, TypeError or ValueError for an entry that is not one."""
    return _organisation_from(entry)


def organisation_json(org: GenesisOrganisation) -> dict[str, Any]:
    """The JSON entry of an organisation, as genesis.json writes it."""
    return _organisation_json(org)
