"""Chain objects as JSON, read from their dataclasses: addresses bech32, bytes hex,
enums by value, `encoded` exact."""

from __future__ import annotations

import dataclasses

from medchain.api._models import (
    IdentityModel,
    NodeStatusModel,
    PeerModel,
    ReceiptModel,
    RecordVersionModel,
    SearchBody,
    StakeModel,
    address_of,
    block_model,
    genesis_model,
)
from medchain.app import (
    Identity,
    KeyWrap,
    RecordVersion,
    Role,
    StakeAccount,
    Unbonding,
    VoteAllocation,
)
from medchain.crypto import AccountKeys
from medchain.node import NodeStatus, PeerStatus
from medchain.types import Attribute, Block, Event, Genesis, Receipt, decode, encode
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


def test_a_chain_object_is_read_from_its_dataclass() -> None:
    """Bytes as hex, addresses as bech32, nested dataclasses and tuples as lists of
    models, and `encoded` the canonical encoding of the object read."""
    reader = AccountKeys.generate()
    version = RecordVersion(
        b"\x01" * 16,
        2,
        "bafkreicid",
        b"\x02" * 32,
        reader.address,
        9,
        b"\x03" * 32,
        (KeyWrap(reader.address, b"\x04\x05"),),
    )
    dumped = RecordVersionModel.of(version).model_dump()
    assert dumped == {
        "record_id": "01" * 16,
        "number": 2,
        "cid": "bafkreicid",
        "ciphertext_hash": "02" * 32,
        "author": reader.address_text,
        "height": 9,
        "tx_id": "03" * 32,
        "wraps": [{"reader": reader.address_text, "wrapped_key": "0405"}],
        "encoded": encode(version).hex(),
    }
    assert decode(RecordVersion, bytes.fromhex(dumped["encoded"])) == version


def test_an_enum_is_sent_as_its_value() -> None:
    keys = AccountKeys.generate()
    identity = Identity(keys.address, keys.public_key, b"\x07" * 32, Role.DOCTOR, "Dr. Who", b"", 3)
    dumped = IdentityModel.of(identity).model_dump()
    assert dumped["role"] == "doctor" and type(dumped["role"]) is str
    assert dumped["ring_key"] == "" and dumped["profile"] == ""


def test_of_gives_the_fields_a_dataclass_lacks_and_leaves_out_what_the_model_lacks() -> None:
    keys = AccountKeys.generate()
    stake = StakeAccount(5, (Unbonding(1, 10),), (VoteAllocation(keys.address, 4),))
    dumped = StakeModel.of(stake, address=keys.address).model_dump()
    assert dumped["address"] == keys.address_text
    assert dumped["unbonding"] == [{"amount": 1, "release_height": 10}]
    assert dumped["votes"] == [{"candidate": keys.address_text, "amount": 4}]
    peer = PeerModel.of(PeerStatus(b"\x04" * 32, "p", "h:1", True, False)).model_dump()
    assert "encoded" not in peer  # only a model that declares it carries `encoded`


def test_text_is_taken_as_it_is() -> None:
    """Request bodies and models built from text are not re-encoded."""
    assert SearchBody(owner="mc1abc", token="0a0b").model_dump() == {
        "owner": "mc1abc",
        "token": "0a0b",
    }


def test_event_attributes_become_an_object() -> None:
    receipt = Receipt(b"\x09" * 32, True, "", "", (Event("transfer", (Attribute("to", "x"),)),))
    dumped = ReceiptModel.of(receipt).model_dump()
    assert dumped["events"] == [{"kind": "transfer", "attributes": {"to": "x"}}]
