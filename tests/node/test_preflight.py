"""Admission dry-runs an access-controlled call carrying its sender's next nonce and
refuses one the contracts would refuse; nothing it runs stays in the state."""

from __future__ import annotations

import asyncio

import pytest

from medchain.app import (
    AddProxyArgs,
    ProxyRelation,
    ProxyScope,
    RegisterArgs,
    Role,
    TransferArgs,
)
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import (
    AdmissionConfig,
    LedgerApp,
    dry_run_at_admission,
    preflight,
    preview_receipt,
)
from medchain.node._admission import Admission, Source
from medchain.node._verifier import Verifier
from medchain.types import Tx, TxFailed, tx_id
from tests.api.harness import make_chain

VALIDATOR = AccountKeys.generate()
STRANGER = AccountKeys.generate()  # not registered; the test chain asks no fee
CHAIN = "medchain-test"


def _app() -> LedgerApp:
    return LedgerApp(make_chain(VALIDATOR).genesis)


def _register(keys: AccountKeys, nonce: int, encryption_key: bytes) -> Tx:
    args = RegisterArgs(Role.PATIENT, "", encryption_key)
    return signed_tx(keys, CHAIN, nonce, "registry.register", args)


def _bad_register(nonce: int = 0) -> Tx:
    return _register(STRANGER, nonce, b"short")  # not an X25519 key: invalid_argument


def _commit_next(app: LedgerApp) -> None:
    block = app.propose(app.height + 1, app.last_block().header.time_ms + 1, VALIDATOR.public_key)
    app.commit(block)


@pytest.mark.parametrize(
    ("method", "dry_run"),
    [
        ("orgs.propose", True),
        ("credentials.issue", True),
        ("proxies.add", True),
        ("emergency.open", True),
        ("records.create", True),
        ("research.grant", True),
        ("devices.register", True),
        ("devices.commit_batch", False),
        ("recovery.complete", True),
        ("keys.rotate", True),
        ("registry.register", True),
        ("anon.open_scope", True),
        ("anon.submit", False),
        ("accounts.transfer", False),
        ("staking.stake", False),
    ],
)
def test_which_methods_are_dry_run(method: str, dry_run: bool) -> None:
    assert dry_run_at_admission(method) is dry_run


def test_a_call_the_contract_refuses_is_refused_and_leaves_no_trace() -> None:
    app = _app()
    root = app.ledger.state_root()
    with pytest.raises(TxFailed) as refused:
        app.preflight(_bad_register())
    assert refused.value.code == "invalid_argument"
    assert "32-byte X25519" in refused.value.message
    assert app.ledger.state_root() == root
    assert app.identity(STRANGER.address) is None and app.account(STRANGER.address).nonce == 0
    _commit_next(app)  # no block layer left open


def test_a_call_the_contract_accepts_passes_and_changes_nothing() -> None:
    app = _app()
    root = app.ledger.state_root()
    tx = _register(STRANGER, 0, STRANGER.encryption_public_key)
    app.preflight(tx)
    receipt = preview_receipt(app.ledger, app.last_block().header, tx)
    assert receipt.ok and receipt.tx_id == tx_id(tx)
    assert app.ledger.state_root() == root and app.identity(STRANGER.address) is None


def test_a_call_behind_the_senders_pending_ones_is_admitted_as_before() -> None:
    app = _app()
    first = _register(STRANGER, 0, STRANGER.encryption_public_key)
    assert app.mempool.add(first, preflight=app.preflight)
    again = _register(STRANGER, 1, STRANGER.encryption_public_key)  # depends on `first`
    assert app.mempool.add(again, preflight=app.preflight)  # not judged before it commits
    _commit_next(app)
    receipt = app.receipt(tx_id(again))
    assert receipt is not None and not receipt.ok and receipt.code == "already_registered"


def test_open_methods_are_not_dry_run() -> None:
    app = _app()
    too_much = signed_tx(
        VALIDATOR, CHAIN, 0, "accounts.transfer", TransferArgs(b"\x05" * 20, 10**12)
    )
    app.preflight(too_much)  # refused on chain, in its receipt, as before
    assert app.mempool.add(too_much, preflight=app.preflight)


def test_admission_refuses_a_clients_call_but_relays_a_peers() -> None:
    async def main() -> None:
        app = _app()
        verifier = Verifier(app.signatures, workers=1)
        admission = Admission(app.mempool, verifier, AdmissionConfig(), preflight=app.preflight)
        try:
            (client,) = await admission.admit([_bad_register()], Source.client("192.0.2.1"))
            assert isinstance(client, TxFailed) and client.code == "invalid_argument"
            assert len(app.mempool) == 0
            (peer,) = await admission.admit([_bad_register()], Source.peer("n1"))
            assert peer is True and len(app.mempool) == 1
        finally:
            await verifier.close()

    asyncio.run(main())


def test_a_dry_run_judges_time_at_the_nodes_clock_not_the_last_block() -> None:
    """On an idle chain the last block may be long past: an expiry that falls between
    it and now has passed for the block that will take the call."""
    app = _app()
    other = AccountKeys.generate()
    for keys in (STRANGER, other):
        assert app.mempool.add(_register(keys, 0, keys.encryption_public_key))
    _commit_next(app)
    last = app.last_block().header
    between = last.time_ms + 1_000
    args = AddProxyArgs(other.address, ProxyRelation.CARER, (ProxyScope.READ,), between)
    tx = signed_tx(STRANGER, CHAIN, 1, "proxies.add", args)
    assert preview_receipt(app.ledger, last, tx).ok  # judged just after the last block
    later = preview_receipt(app.ledger, last, tx, now_ms=between + 1)
    assert (later.ok, later.code) == (False, "invalid_argument")
    with pytest.raises(TxFailed):
        preflight(app.ledger, last, tx, now_ms=between + 1)
