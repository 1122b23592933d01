"""The ledger commands with `--node URL`: the same stories as on a local chain,
told to a node's API served by uvicorn; `status` shows the node; no node is a
clear error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.cli import app
from medchain.crypto import AccountKeys, save_keys
from medchain.node import PeerStatus
from tests.api.harness import HOSPITAL, RESEARCH, FakeNode, Org, Served, make_chain, served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALIDATOR = AccountKeys.generate()
PEER = PeerStatus(b"\x07" * 32, "hospital-b", "10.0.0.2:8700", True, True)
runner = CliRunner()


@pytest.fixture(scope="module")
def node() -> Iterator[Served]:
    with served(lambda: FakeNode(make_chain(VALIDATOR), peers=(PEER,))) as running:
        yield running


class Cli:
    """Runs commands against the node; MEDCHAIN_DATA unset so --node is used."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.url = url

    def __call__(self, *args: str, ok: bool = True, node: bool = True) -> str:
        argv = [*args, "--node", self.url] if node and args[0] != "keys" else list(args)
        result = runner.invoke(app, argv, env={"MEDCHAIN_DATA": None, "MEDCHAIN_NODE": None})
        assert result.exit_code == (0 if ok else 1), result.output
        return result.output

    def key(self, name: str, role: str | None = None) -> tuple[str, str]:
        """A new key file; registered, with `role`, as a patient (as every account
        registers itself) and credentialed by the founding hospital for any other."""
        path = self.tmp / f"{name}.key"
        address = self("keys", "new", "--out", str(path)).strip()
        if role:
            self("register", "--key", str(path), "--role", "patient", "--name", name)
        if role and role != "patient":
            staff = self.keep(HOSPITAL, "admin")
            self("org", "credential", address, "--role", role, "--name", name, "--key", staff)
        return str(path), address

    def keep(self, org: Org, which: str) -> str:
        """A founding organisation's `admin` or own `account` key as a key file."""
        path = self.tmp / f"{org.org_id}-{which}.key"
        if not path.exists():
            save_keys(path, org.admin if which == "admin" else org.account)
        return str(path)

    def research_account(self) -> tuple[str, str]:
        """The founding research institute's own account: its key file and address."""
        return self.keep(RESEARCH, "account"), RESEARCH.account.address_text


@pytest.fixture
def cli(tmp_path: Path, node: Served) -> Cli:
    return Cli(tmp_path, node.url)


def _ids(output: str) -> list[str]:
    return [word for word in output.split() if len(word) == 32]


def test_status_shows_the_node(cli: Cli) -> None:
    out = cli("status")
    for shown in ("fake-0", "medchain-test", "pbft", "validator", "height", "round", "hospital-b"):
        assert shown in out
    assert f"v0 ({VALIDATOR.address_text})" in out and "1 of 1 connected" in out


def test_records_story(cli: Cli) -> None:
    alice, alice_addr = cli.key("alice", "patient")
    bob, _ = cli.key("bob", "doctor")
    carol, carol_addr = cli.key("carol", "doctor")
    lab, lab_addr = cli.research_account()
    heart = str(EXAMPLES / "observation-heart-rate.json")

    (record_id,) = _ids(
        cli("record", "put", "--key", bob, "--patient", alice_addr, "--file", heart)
    )
    assert '"resourceType": "Observation"' in cli("record", "get", "--key", alice, record_id)
    assert "not an authorised reader" in cli("record", "get", "--key", carol, record_id, ok=False)
    cli("record", "grant", "--key", alice, record_id, "--reader", carol_addr)
    assert "Observation" in cli("record", "get", "--key", carol, record_id)
    refused = cli("record", "grant", "--key", bob, record_id, "--reader", lab_addr, ok=False)
    assert "not_owner" in refused
    cli("record", "revoke", "--key", alice, record_id, "--reader", carol_addr)
    cli("record", "update", "--key", bob, record_id, "--file", heart)
    assert "not an authorised reader" in cli("record", "get", "--key", carol, record_id, ok=False)

    cli("research", "grant", "--key", alice, record_id, "--institution", lab_addr)
    research = json.loads(cli("research", "data", "--key", lab))
    assert research[0]["record"] == record_id
    cli("research", "revoke", "--key", alice, record_id, "--institution", lab_addr)
    assert json.loads(cli("research", "data", "--key", lab)) == []

    audit = cli("record", "audit", record_id)
    for action in ("created", "granted", "revoked", "versioned", "research_granted"):
        assert action in audit
    assert record_id in cli("record", "list", "--patient", alice_addr)
    shown = cli("record", "show", record_id)
    assert "Observation" in shown and "version 2" in shown
    assert "unknown_record" in cli("record", "get", "--key", alice, "ab" * 16, ok=False)
    assert "no record" in cli("record", "show", "ab" * 16, ok=False)
    assert "patient" in cli("account", alice_addr)


def test_reads_are_signed_for_the_purpose_asked(cli: Cli) -> None:
    alice, alice_addr = cli.key("alice", "patient")
    bob, _ = cli.key("bob", "doctor")
    heart = str(EXAMPLES / "observation-heart-rate.json")
    put = ("record", "put", "--key", bob, "--patient", alice_addr, "--file", heart)
    (record_id,) = _ids(cli(*put))
    get = ("record", "get", "--key", bob, record_id)
    assert "Observation" in cli(*get, "--purpose", "TREAT")  # the author reads to treat
    refused = cli(*get, "--purpose", "HPAYMT", ok=False)
    assert "read_not_authorised" in refused and "not HPAYMT" in refused
    assert "Observation" in cli("record", "get", "--key", alice, record_id, "--purpose", "hpaymt")


def test_search_story(cli: Cli, tmp_path: Path) -> None:
    alice, alice_addr = cli.key("alice", "patient")
    bob, _ = cli.key("bob", "doctor")
    carol, carol_addr = cli.key("carol", "doctor")
    put = ("record", "put", "--key", bob, "--patient", alice_addr, "--file")
    (r1,) = _ids(cli(*put, str(EXAMPLES / "condition.json"), "--keyword", "HbA1c"))
    (r2,) = _ids(cli(*put, str(EXAMPLES / "observation-heart-rate.json"), "--keyword", "hba1c"))
    assert _ids(cli("record", "search", "--key", bob, "--keyword", "HBA1C")) == [r1, r2]
    cli("record", "index", "--key", alice, r1, "--keyword", "mine")
    assert _ids(cli("record", "search", "--key", alice, "--keyword", "mine")) == [r1]
    cli("record", "unindex", "--key", alice, r1, "--keyword", "mine")
    assert _ids(cli("record", "search", "--key", alice, "--keyword", "mine")) == []
    cap = tmp_path / "carol.cap"
    grant = ("record", "search-grant", "--key", bob, "--reader", carol_addr, "--out", str(cap))
    cli(*grant, "--keyword", "hba1c")
    found = cli("record", "search", "--key", carol, "--capability", str(cap), "--keyword", "hba1c")
    assert _ids(found) == [r1, r2]


def test_tokens_and_staking(cli: Cli) -> None:
    validator = cli.tmp / "validator.key"
    save_keys(validator, VALIDATOR)
    lab, lab_addr = cli.research_account()
    cli("transfer", "--key", str(validator), "--to", lab_addr, "--amount", "50000")
    assert "balance: 50000" in cli("account", lab_addr)
    cli("staking", "stake", "--key", lab, "20000")
    cli("staking", "vote", "--key", lab, "--candidate", VALIDATOR.address_text, "--amount", "15000")
    assert "15000" in cli("staking", "candidates")
    cli(
        "staking", "unvote", "--key", lab, "--candidate", VALIDATOR.address_text, "--amount", "5000"
    )
    cli("staking", "unstake", "--key", lab, "5000")
    assert "finished unbonding" in cli("staking", "withdraw", "--key", lab, ok=False)
    assert "bonded 15000" in cli("account", lab_addr)


def test_anonymous_contributions(cli: Cli) -> None:
    patients = [cli.key(f"p{i}", "patient")[0] for i in range(4)]
    lab, _ = cli.research_account()
    scope = f"study-{cli.tmp.name}"
    cli("anon", "open", "--key", lab, "--scope", scope, "--min-ring", "3")
    submit = ("anon", "submit", "--key", patients[1], "--scope", scope)
    out = cli(*submit, "--file", str(EXAMPLES / "condition.json"), "--ring-size", "3")
    assert "anonymously" in out
    again = cli(*submit, "--file", str(EXAMPLES / "condition.json"), "--ring-size", "3", ok=False)
    assert "key_image_reused" in again
    listed = json.loads(cli("anon", "list", "--key", lab, "--scope", scope))
    assert len(listed) == 1 and listed[0]["resource"]["resourceType"] == "Condition"
    cli("anon", "close", "--key", lab, "--scope", scope)


def test_node_from_the_environment_and_data_wins(node: Served, tmp_path: Path) -> None:
    env = {"MEDCHAIN_DATA": None, "MEDCHAIN_NODE": node.url}
    result = runner.invoke(app, ["status"], env=env)
    assert result.exit_code == 0 and "fake-0" in result.output
    local = tmp_path / "chain"
    assert runner.invoke(app, ["init", "--data", str(local)]).exit_code == 0
    result = runner.invoke(app, ["status", "--data", str(local)], env=env)
    assert result.exit_code == 0 and "height:     0" in result.output
    result = runner.invoke(app, ["status"], env={**env, "MEDCHAIN_DATA": str(local)})
    assert result.exit_code == 0 and "medchain-local" in result.output


def test_no_node_is_a_clear_error(tmp_path: Path) -> None:
    key = tmp_path / "a.key"
    save_keys(key, AccountKeys.generate())
    for argv in (
        ["status"],
        ["account", AccountKeys.generate().address_text],
        ["register", "--key", str(key), "--role", "patient", "--name", "A"],
        ["record", "list", "--patient", AccountKeys.generate().address_text],
    ):
        result = runner.invoke(
            app, [*argv, "--node", "http://127.0.0.1:9"], env={"MEDCHAIN_DATA": None}
        )
        assert result.exit_code == 1, result.output
        for hint in ("node_unreachable", "http://127.0.0.1:9", "medchain devnet up", "--data"):
            assert hint in result.output, (argv, result.output)
    bad = runner.invoke(app, ["status", "--node", "localhost:8600"], env={"MEDCHAIN_DATA": None})
    assert bad.exit_code == 1 and "not a node URL" in bad.output
