"""The disclosure heads contract: only a validator's account commits the head of its
node's log, or an active edge gateway's the head of the gateway's; each committer's seq
strictly increases; its history and latest are kept, and every committer is listed with
its API URL."""

from __future__ import annotations

from medchain.app import (
    METHODS,
    CommitHeadArgs,
    RegisterGatewayArgs,
    RevokeGatewayArgs,
    disclosure_nodes,
    head_commit_count,
    head_commits,
    latest_head,
)
from medchain.crypto import AccountKeys
from tests.app.conftest import World

URL = "http://127.0.0.1:8600"


def head(n: int) -> bytes:
    return bytes([n]) * 32


def test_commit_is_a_contract_method() -> None:
    assert METHODS["disclosures.commit"][0] is CommitHeadArgs


def test_a_validator_commits_and_its_history_is_kept(world: World, validator: AccountKeys) -> None:
    receipt = world.ok(validator, "disclosures.commit", CommitHeadArgs(3, head(1), URL))
    assert receipt.events[0].kind == "disclosures.committed"
    world.ok(validator, "disclosures.commit", CommitHeadArgs(7, head(2), URL + "/"))
    latest = latest_head(world.ledger.state, validator.address)
    assert latest is not None
    assert (latest.node, latest.seq, latest.head, latest.api_url) == (
        validator.address,
        7,
        head(2),
        URL + "/",
    )
    history = head_commits(world.ledger.state, validator.address)
    assert [(c.seq, c.head) for c in history] == [(3, head(1)), (7, head(2))]
    assert history[0].height < history[1].height
    assert head_commit_count(world.ledger.state, validator.address) == 2
    assert head_commits(world.ledger.state, validator.address, 1, 5) == history[1:]
    assert disclosure_nodes(world.ledger.state) == [latest]


def test_seq_must_increase(world: World, validator: AccountKeys) -> None:
    world.ok(validator, "disclosures.commit", CommitHeadArgs(5, head(1), URL))
    for seq in (5, 4):
        message = world.refused(
            validator, "disclosures.commit", CommitHeadArgs(seq, head(2), URL), "invalid_argument"
        )
        assert "only grows" in message
    latest = latest_head(world.ledger.state, validator.address)
    assert latest is not None and latest.seq == 5
    world.refused(
        validator, "disclosures.commit", CommitHeadArgs(0, head(2), URL), "invalid_argument"
    )


def test_only_a_validator_commits(
    world: World, patient: AccountKeys, doctor: AccountKeys, validator: AccountKeys
) -> None:
    for keys in (patient, doctor):
        world.refused(keys, "disclosures.commit", CommitHeadArgs(1, head(1), URL), "wrong_role")
    stranger = AccountKeys.generate()
    world.refused(stranger, "disclosures.commit", CommitHeadArgs(1, head(1), URL), "not_registered")
    assert disclosure_nodes(world.ledger.state) == []


def test_malformed_heads_and_urls_are_refused(world: World, validator: AccountKeys) -> None:
    for args in (
        CommitHeadArgs(1, b"\x01" * 31, URL),
        CommitHeadArgs(1, head(1), ""),
        CommitHeadArgs(1, head(1), "ftp://node"),
        CommitHeadArgs(1, head(1), "http://" + "x" * 300),
    ):
        world.refused(validator, "disclosures.commit", args, "invalid_argument")
    assert latest_head(world.ledger.state, validator.address) is None


def _a_gateway(world: World) -> tuple[AccountKeys, AccountKeys]:
    """(a hospital admin, the gateway it registered)."""
    hospital, gateway = world.orgs[0].admin, AccountKeys.generate()
    world.ok(hospital, "devices.register_gateway", RegisterGatewayArgs(gateway.address, "edge"))
    return hospital, gateway


def test_an_active_gateway_commits_its_logs_head(world: World, validator: AccountKeys) -> None:
    _, gateway = _a_gateway(world)
    world.ok(validator, "disclosures.commit", CommitHeadArgs(1, head(9), URL))
    world.ok(gateway, "disclosures.commit", CommitHeadArgs(2, head(1), "http://edge:8700"))
    world.ok(gateway, "disclosures.commit", CommitHeadArgs(4, head(2), "http://edge:8700"))
    latest = latest_head(world.ledger.state, gateway.address)
    assert latest is not None and (latest.node, latest.seq) == (gateway.address, 4)
    assert [c.node for c in disclosure_nodes(world.ledger.state)] == [
        validator.address,
        gateway.address,
    ]
    world.refused(
        gateway, "disclosures.commit", CommitHeadArgs(3, head(3), URL), "invalid_argument"
    )


def test_a_revoked_gateway_commits_no_more(world: World) -> None:
    hospital, gateway = _a_gateway(world)
    world.ok(gateway, "disclosures.commit", CommitHeadArgs(1, head(1), URL))
    world.ok(hospital, "devices.revoke_gateway", RevokeGatewayArgs(gateway.address))
    message = world.refused(
        gateway, "disclosures.commit", CommitHeadArgs(2, head(2), URL), "unknown_gateway"
    )
    assert "not an active gateway" in message
    latest = latest_head(world.ledger.state, gateway.address)
    assert latest is not None and latest.seq == 1  # what it committed stays
