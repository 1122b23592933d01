"""AnchorContract against eth-tester: what a node sends and reads."""

from __future__ import annotations

import os
import socket
from itertools import count
from pathlib import Path

import pytest
from web3 import Web3

from medchain.anchor import (
    FINALIZED,
    AlreadyAnchored,
    AnchorContract,
    AnchorError,
    AnchorRejected,
    AnchorSettings,
    CheckpointCertificate,
    CheckpointSignature,
    EthKeyError,
    VerificationChainUnavailable,
    new_eth_key,
)
from tests.anchor.conftest import Chain

_ids = count()


@pytest.fixture
def chain_id() -> str:
    return f"medchain-client-{next(_ids)}"


def client(chain: Chain, address: str, who: int = 0, **kwargs: object) -> AnchorContract:
    return AnchorContract(chain.w3, address, chain.accounts[who], **kwargs)  # type: ignore[arg-type]


def cert(chain_id: str, height: int, validators: int = 3) -> CheckpointCertificate:
    sigs = tuple(CheckpointSignature(os.urandom(32), os.urandom(64)) for _ in range(validators))
    return CheckpointCertificate(chain_id, height, os.urandom(32), os.urandom(32), sigs)


def registered(chain: Chain, address: str, chain_id: str, **kwargs: object) -> AnchorContract:
    """A chain whose admin is account 0 and whose submitters are accounts 1 and 2;
    returns account 1's client."""
    submitters = [a.address for a in chain.accounts[1:3]]
    client(chain, address).register_chain(chain_id, submitters)
    return client(chain, address, 1, **kwargs)


def test_submit_and_read_back(chain: Chain, contract_address: str, chain_id: str) -> None:
    sender = registered(chain, contract_address, chain_id)
    first, second = cert(chain_id, 5), cert(chain_id, 10, validators=64)
    tx_hashes = [sender.submit(first), sender.submit(second)]

    reader = AnchorContract(chain.w3, contract_address.lower())  # no key: reads only
    anchors = reader.anchors(chain_id)
    assert [a.height for a in anchors] == [5, 10]
    for anchor, sent, tx_hash in zip(anchors, (first, second), tx_hashes, strict=True):
        receipt = chain.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        assert anchor.chain_id == chain_id
        assert (anchor.block_hash, anchor.state_root) == (sent.block_hash, sent.state_root)
        assert set(anchor.signatures) == set(sent.signatures)
        assert anchor.submitter == chain.accounts[1].address
        assert anchor.eth_tx == tx_hash
        assert anchor.eth_block == receipt["blockNumber"]
    assert reader.anchors(chain_id, from_height=6) == anchors[1:]
    assert reader.anchors(chain_id, from_block=anchors[1].eth_block) == anchors[1:]
    assert reader.anchors(chain_id, from_block=anchors[1].eth_block + 1) == []
    assert reader.anchor_at(chain_id, 10) == anchors[1]
    assert reader.anchor_at(chain_id, 7) is None
    assert reader.latest_height(chain_id) == 10
    assert reader.anchors("never-registered") == []
    assert reader.latest_height("never-registered") == 0


def test_rejections_carry_the_contract_reason(
    chain: Chain, contract_address: str, chain_id: str
) -> None:
    sender = registered(chain, contract_address, chain_id)
    sent = cert(chain_id, 7)
    sender.submit(sent)
    other_validator = client(chain, contract_address, 2)
    with pytest.raises(AlreadyAnchored, match="already anchored") as caught:
        other_validator.submit(sent)  # lost the race: ignorable
    assert caught.value.reason == "already anchored"
    with pytest.raises(AnchorRejected, match="height not above the latest anchor") as refused:
        sender.submit(cert(chain_id, 6))
    assert not isinstance(refused.value, AlreadyAnchored)
    with pytest.raises(AnchorRejected, match="not a submitter"):
        client(chain, contract_address, 3).submit(cert(chain_id, 8))
    with pytest.raises(AnchorRejected, match="chain already registered"):
        client(chain, contract_address, 3).register_chain(chain_id, [])


def test_conflicts_pair_the_evidence_with_the_anchor(
    chain: Chain, contract_address: str, chain_id: str
) -> None:
    sender = registered(chain, contract_address, chain_id)
    assert sender.conflicts(chain_id) == []
    sender.submit(cert(chain_id, 3))
    fork = cert(chain_id, 3)
    client(chain, contract_address, 2).submit(fork)
    (conflict,) = sender.conflicts(chain_id)
    assert conflict.height == 3
    assert conflict.anchored == sender.anchor_at(chain_id, 3)
    assert conflict.conflicting.block_hash == fork.block_hash
    assert conflict.conflicting.submitter == chain.accounts[2].address
    assert conflict.conflicting.eth_block > conflict.anchored.eth_block
    assert [a.block_hash for a in sender.anchors(chain_id)] == [conflict.anchored.block_hash]


def test_admin_replaces_submitters(chain: Chain, contract_address: str, chain_id: str) -> None:
    registered(chain, contract_address, chain_id)
    admin = client(chain, contract_address)
    admin.set_submitters(chain_id, [chain.accounts[3].address])
    assert admin.submitters(chain_id) == [chain.accounts[3].address]
    with pytest.raises(AnchorRejected, match="only the chain admin"):
        client(chain, contract_address, 3).set_submitters(chain_id, [])


def test_final_after_the_configured_confirmations(
    chain: Chain, contract_address: str, chain_id: str
) -> None:
    sender = registered(chain, contract_address, chain_id, finality=3)
    sender.submit(cert(chain_id, 1))
    (anchor,) = sender.anchors(chain_id)
    head = chain.w3.eth.block_number
    assert head == anchor.eth_block  # 1 confirmation
    assert not anchor.final
    chain.mine(1)
    assert not sender.anchors(chain_id)[0].final  # 2
    chain.mine(1)
    assert sender.anchors(chain_id)[0].final  # 3
    assert sender.anchor_at(chain_id, 1) == sender.anchors(chain_id)[0]


def test_final_by_the_finalized_tag(chain: Chain, contract_address: str, chain_id: str) -> None:
    sender = registered(chain, contract_address, chain_id, finality=FINALIZED)
    sender.submit(cert(chain_id, 1))
    (anchor,) = sender.anchors(chain_id)
    finalized = chain.w3.eth.get_block("finalized")["number"]
    assert anchor.final == (anchor.eth_block <= finalized)


def test_malformed_signatures_read_as_none(
    chain: Chain, contract_address: str, chain_id: str
) -> None:
    sender = registered(chain, contract_address, chain_id)
    raw = sender.w3.eth.contract(address=sender.address, abi=sender._contract.abi)
    submitter = chain.accounts[1]
    tx = raw.functions.anchor(
        chain_id, 2, os.urandom(32), os.urandom(32), b"junk"
    ).build_transaction(
        {"from": submitter.address, "nonce": chain.w3.eth.get_transaction_count(submitter.address)}
    )
    chain.w3.eth.send_raw_transaction(submitter.sign_transaction(tx).raw_transaction)  # type: ignore[arg-type]
    (anchor,) = sender.anchors(chain_id)
    assert anchor.signatures == ()


def test_refuses_before_sending(chain: Chain, contract_address: str, chain_id: str) -> None:
    sender = registered(chain, contract_address, chain_id)
    nonce = chain.w3.eth.get_transaction_count(chain.accounts[1].address)
    with pytest.raises(AnchorError, match="more than the contract's 8192"):
        sender.submit(cert(chain_id, 1, validators=90))
    with pytest.raises(AnchorError, match="malformed"):
        sender.submit(CheckpointCertificate(chain_id, 1, b"\x01" * 31, b"\x02" * 32, ()))
    with pytest.raises(AnchorError, match="takes 1 to 64"):
        sender.submit(cert("x" * 65, 1))
    with pytest.raises(AnchorError, match="can only read"):
        AnchorContract(chain.w3, contract_address).submit(cert(chain_id, 1))
    wrong_chain = client(chain, contract_address, 1, eth_chain_id=chain.w3.eth.chain_id + 1)
    with pytest.raises(AnchorError, match=r"serves Ethereum chain \d+, but anchor.eth_chain_id"):
        wrong_chain.submit(cert(chain_id, 1))
    assert chain.w3.eth.get_transaction_count(chain.accounts[1].address) == nonce


def test_no_contract_at_the_address(chain: Chain) -> None:
    empty = AnchorContract(chain.w3, chain.accounts[3].address)
    with pytest.raises(AnchorError, match="no anchor contract answers"):
        empty.latest_height("medchain")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connect_over_http_and_name_an_unreachable_endpoint(
    tmp_path: Path, contract_address: str
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    settings = AnchorSettings(url, 1337, contract_address, finality=2)
    with pytest.raises(EthKeyError, match="no Ethereum key file"):
        AnchorContract.connect(settings, tmp_path)  # sending needs the key
    account = new_eth_key(tmp_path / "eth.key")
    sender = AnchorContract.connect(settings, tmp_path)
    assert sender.account is not None and sender.account.address == account.address
    assert (sender.finality, sender.eth_chain_id, sender.url) == (2, 1337, url)
    reader = AnchorContract.connect(
        AnchorSettings(url, 1337, contract_address, enabled=False), tmp_path / "elsewhere"
    )
    assert reader.account is None
    not_a_validator = AnchorContract.connect(settings, tmp_path / "elsewhere", sender=False)
    assert not_a_validator.account is None
    for call in (
        lambda: reader.anchors("medchain"),
        lambda: reader.latest_height("medchain"),
        lambda: sender.submit(cert("medchain", 1)),
    ):
        with pytest.raises(VerificationChainUnavailable, match=url):
            call()


def test_deploy_gives_a_checksummed_address(chain: Chain, contract_address: str) -> None:
    assert Web3.is_checksum_address(contract_address)
    assert chain.w3.eth.get_code(contract_address)  # type: ignore[arg-type]
