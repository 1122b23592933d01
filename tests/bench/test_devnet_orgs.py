"""A benchmark on a devnet finds a founding organisation's keys where the devnet's home
keeps them, by kind, and says so when they are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchain.app import OrgKind
from medchain.bench._devnet_orgs import founding_key
from medchain.crypto import save_keys
from medchain.node import (
    ADMIN_KEY_FILE,
    GENESIS_FILE,
    ORG_KEY_FILE,
    Devnet,
    DevnetNode,
    write_genesis,
)
from medchain.types import MedchainError
from tests.api.harness import HOSPITAL, RESEARCH, make_chain


def _devnet(home: Path) -> Devnet:
    node = DevnetNode("node0", home / "node0", "http://127.0.0.1:1", 1, True)
    node.home.mkdir(parents=True)
    write_genesis(node.home / GENESIS_FILE, make_chain().genesis)  # founded by both
    for org in (HOSPITAL, RESEARCH):
        (home / "orgs" / org.org_id).mkdir(parents=True)
        save_keys(home / "orgs" / org.org_id / ADMIN_KEY_FILE, org.admin)
        save_keys(home / "orgs" / org.org_id / ORG_KEY_FILE, org.account)
    return Devnet(home, "medchain-test", "pbft", (node,))


def test_the_keys_of_a_founding_organisation_of_a_kind(tmp_path: Path) -> None:
    devnet = _devnet(tmp_path)
    hospital = founding_key(devnet, ADMIN_KEY_FILE, OrgKind.HOSPITAL)
    assert hospital.address == HOSPITAL.admin.address
    research = founding_key(devnet, ORG_KEY_FILE, OrgKind.RESEARCH)
    assert research.address == RESEARCH.account.address
    assert founding_key(devnet, ORG_KEY_FILE).address == HOSPITAL.account.address  # by id
    with pytest.raises(MedchainError, match="no key of a founding insurer organisation"):
        founding_key(devnet, ADMIN_KEY_FILE, OrgKind.INSURER)
