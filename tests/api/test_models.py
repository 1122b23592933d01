"""Chain objects as JSON: addresses bech32, bytes hex, `encoded` exact."""

from __future__ import annotations

import dataclasses

from medchain.api._models import NodeStatusModel, address_of, block_model, genesis_model
from medchain.crypto import AccountKeys
from medchain.node import NodeStatus, PeerStatus
from medchain.types import Block, Genesis, decode
from tests.api.harness import make_chain


def test_address_of() -> None:
    keys = AccountKeys.generate()
    assert address_of(keys.address) == keys.address_text
    assert address_of(b"") == ""
    assert address_of(b"\x01\x02") == "0102"  # never fails on a malformed value


def test_genesis_block_has_no_signers_and_decodes() -> None:
    chain = make_chain()
    model = block_model(chain.latest_block(), chain.genesis)
    assert model.height == 0 and model.certificate.signers == [] and model.tx_hashes == []
    assert decode(Block, bytes.fromhex(model.encoded)) == chain.latest_block()


def test_genesis_model() -> None:
    chain = make_chain(consensus="afbft", min_fee=3)
    model = genesis_model(chain.genesis)
    assert model.params["consensus"] == "afbft" and model.params["min_fee"] == 3
    assert decode(Genesis, bytes.fromhex(model.encoded)) == chain.genesis


def test_status_model_keeps_every_field() -> None:
    status = NodeStatus(
        name="n",
        node_key=b"\x01" * 32,
        validator=False,
        consensus="dpos",
        chain_id="c",
        height=7,
        latest_hash=b"\x02" * 32,
        latest_time_ms=5,
        state_root=b"\x03" * 32,
        round=2,
        primary=None,
        round_changes=1,
        syncing=True,
        peers=(PeerStatus(b"\x04" * 32, "p", "", True, False),),
        mempool_txs=3,
        mempool_bytes=300,
        started_ms=4,
    )
    dumped = NodeStatusModel.of(status).model_dump()
    assert set(dumped) == {f.name for f in dataclasses.fields(NodeStatus)}
    assert dumped["primary"] is None and dumped["node_key"] == "01" * 32
    assert dumped["peers"] == [
        {"key": "04" * 32, "name": "p", "address": "", "connected": True, "validator": False}
    ]
