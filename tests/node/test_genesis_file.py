"""genesis.json with founding organisations: the fields round-trip, and a genesis
without them keeps its document and its hash."""

from __future__ import annotations

import dataclasses
import json

import pytest

from medchain.crypto import AccountKeys
from medchain.node import genesis_from_json, genesis_hash, genesis_to_json
from medchain.types import (
    ChainParams,
    Genesis,
    GenesisError,
    GenesisOrganisation,
    GenesisValidator,
)


def _organisation(org_id: str = "st-mary") -> GenesisOrganisation:
    account = AccountKeys.generate()
    return GenesisOrganisation(
        org_id,
        "St Mary's Hospital",
        "hospital",
        (AccountKeys.generate().public_key, AccountKeys.generate().public_key),
        account.public_key,
        account.encryption_public_key,
    )


def _genesis() -> Genesis:
    org = _organisation()
    validator = GenesisValidator(AccountKeys.generate().public_key, "v0", 1, org.org_id)
    return Genesis("medchain-orgs", 5, validators=(validator,), organisations=(org,))


def test_organisations_and_validator_organisations_round_trip() -> None:
    genesis = _genesis()
    text = genesis_to_json(genesis)
    document = json.loads(text)
    org = genesis.organisations[0]
    assert document["organisations"] == [
        {
            "org_id": "st-mary",
            "name": "St Mary's Hospital",
            "kind": "hospital",
            "admins": [key.hex() for key in org.admins],
            "public_key": org.public_key.hex(),
            "encryption_key": org.encryption_key.hex(),
        }
    ]
    assert document["validators"][0]["organisation"] == "st-mary"
    assert genesis_from_json(text) == genesis
    assert genesis_hash(genesis_from_json(text)) == genesis_hash(genesis)


def test_a_genesis_without_organisations_reads_and_hashes_as_before() -> None:
    genesis = Genesis("medchain-plain", 5, validators=(GenesisValidator(b"\x33" * 32, "v0"),))
    document = json.loads(genesis_to_json(genesis))
    assert "organisations" not in document
    assert "organisation" not in document["validators"][0]
    with_orgs = _genesis()
    assert genesis_hash(with_orgs) != genesis_hash(dataclasses.replace(with_orgs, organisations=()))


def test_proposal_blocks_left_at_its_default_keeps_the_hash() -> None:
    genesis = Genesis("medchain-pinned", 1_700_000_000_000, ChainParams(min_fee=3))
    changed = dataclasses.replace(genesis, params=ChainParams(min_fee=3, proposal_blocks=7))
    assert genesis_hash(changed) != genesis_hash(genesis)
    assert genesis_hash(genesis_from_json(genesis_to_json(changed))) == genesis_hash(changed)


def test_a_malformed_organisation_is_refused_with_the_file_named() -> None:
    document = json.loads(genesis_to_json(_genesis()))
    document["organisations"][0]["admins"] = "not-a-list"
    with pytest.raises(GenesisError, match=r"orgs\.json is not a valid genesis document"):
        genesis_from_json(json.dumps(document), "orgs.json")
