"""The node's commitments of its disclosure log's head: one only when the log has
written entries beyond what the chain holds, one pending at a time, and none by a
node whose account is not a validator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from medchain.app import head_commits, latest_head
from medchain.crypto import AccountKeys
from medchain.node import (
    ConfigError,
    Disclosure,
    DisclosureKind,
    LedgerApp,
    ReadBasis,
    SqliteDisclosureLog,
)
from medchain.node._disclosure_commits import (
    DEFAULT_COMMIT_INTERVAL_S,
    DisclosureCommitter,
    commit_interval_s,
)
from medchain.types import ChainParams, Genesis, GenesisValidator, Tx

CHAIN = "medchain-disclosure-commits"
T0 = 1_700_000_000_000
URL = "http://127.0.0.1:8601"


def a_read(n: int) -> Disclosure:
    return Disclosure(
        T0 + n, bytes([3]) * 20, bytes([1]) * 20, DisclosureKind.WRAPS, "TREAT", ReadBasis.READER
    )


class OneNode:
    def __init__(self, tmp_path: Path, keys: AccountKeys, validator: AccountKeys) -> None:
        genesis = Genesis(
            CHAIN, T0, ChainParams(), (), (GenesisValidator(validator.public_key, "v0"),)
        )
        self.keys = keys
        self.validator = validator
        self.app = LedgerApp(genesis)
        self.log = SqliteDisclosureLog(tmp_path / "disclosures.sqlite", keys.address)
        self.committer = DisclosureCommitter(self.log, self.app, keys, URL, self.submit)

    async def submit(self, tx: Tx) -> bool:
        self.app.add_tx(tx)
        return True

    def block(self) -> None:
        height = self.app.height + 1
        block = self.app.propose(height, T0 + 1_000 * height, self.validator.public_key)
        assert self.app.validate(block) is None
        self.app.commit(block)

    def reads(self, count: int) -> None:
        for n in range(count):
            self.log.append(a_read(n))
        assert self.log.flush(30)


def test_commits_the_written_head_only_when_new_entries_exist(tmp_path: Path) -> None:
    keys = AccountKeys.generate()
    node = OneNode(tmp_path, keys, keys)
    assert not asyncio.run(node.committer.commit_once())  # an empty log: nothing to commit
    node.reads(3)
    assert asyncio.run(node.committer.commit_once())
    assert not asyncio.run(node.committer.commit_once())  # the first is still pending
    node.block()
    latest = latest_head(node.app.ledger.state, keys.address)
    assert latest is not None
    assert (latest.seq, latest.head, latest.api_url) == (*node.log.durable, URL)
    assert not asyncio.run(node.committer.commit_once())  # nothing new since
    node.reads(2)
    assert asyncio.run(node.committer.commit_once())
    node.block()
    history = head_commits(node.app.ledger.state, keys.address)
    assert [c.seq for c in history] == [3, 5]
    assert node.log.disagreement([(c.seq, c.head) for c in history]) == 0
    node.log.close()


def test_a_node_that_is_not_a_validator_commits_nothing(tmp_path: Path) -> None:
    node = OneNode(tmp_path, AccountKeys.generate(), AccountKeys.generate())
    node.reads(2)
    assert not asyncio.run(node.committer.commit_once())
    assert len(node.app.mempool) == 0
    node.log.close()


def test_the_commit_interval_comes_from_config_checked() -> None:
    assert commit_interval_s({}) == DEFAULT_COMMIT_INTERVAL_S
    assert commit_interval_s({"disclosures": {"commit_interval_s": 0.5}}) == 0.5
    bad: object
    for bad in (
        {"commit_interval_s": 0},
        {"commit_interval_s": "5"},
        {"commit_interval_s": True},
        [],
    ):
        with pytest.raises(ConfigError, match="commit_interval_s"):
            commit_interval_s({"disclosures": bad})
