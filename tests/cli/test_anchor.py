"""The dual chain's tools on real node homes built in-process, with eth-tester as the
verification chain (the CLI's Ethereum client factory is replaced): `verify` through
`audit_node` and through the command, `recover`, `fork`, `node adopt-genesis` and
`anchor register`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner
from web3.types import Wei

from medchain.anchor import (
    ETH_KEY_FILE,
    Anchor,
    AnchorContract,
    AnchorError,
    AnchorSettings,
    CheckpointCertificate,
    Finality,
    Mismatch,
    compare_hashes,
    load_eth_key,
    new_eth_key,
)
from medchain.api import create_api
from medchain.cli import _audit as audit
from medchain.cli import app
from medchain.client import NodeUnreachable
from medchain.crypto import AccountKeys
from medchain.node import (
    GENESIS_FILE,
    STORE_FILE,
    WAL_FILE,
    AnchoringStatus,
    LocalChain,
    NodeConfig,
    PeerConfig,
    read_config,
    read_genesis,
    write_config,
    write_genesis,
)
from medchain.store import ChainStore
from medchain.types import Block, MedchainError, block_hash
from tests.anchor.conftest import FUNDS_WEI, eth_tester_chain
from tests.anchor.conftest import Chain as Eth
from tests.anchor.test_verify import CHAIN, Chain, make_anchor, make_chain, other_tx, rewrite
from tests.api.harness import FakeNode, SyncASGITransport, served

runner = CliRunner()


@pytest.fixture
def eth() -> Eth:
    """A fresh chain per test: eth-tester's log queries slow down as blocks pile up."""
    return eth_tester_chain(accounts=3)


@dataclass
class Verification:
    """A fresh Anchor contract on eth-tester with CHAIN registered; account 1 anchors.
    The CLI's clients all reach it, whatever URL they are given (`urls`)."""

    eth: Eth
    address: str
    urls: list[str]

    @property
    def settings(self) -> AnchorSettings:
        chain_id = int(self.eth.w3.eth.chain_id)
        return AnchorSettings("http://eth.invalid:8545", chain_id, self.address, finality=1)

    def anchor(self, anchors: list[Anchor]) -> None:
        sender = AnchorContract(self.eth.w3, self.address, self.eth.accounts[1])
        for a in anchors:
            sender.submit(
                CheckpointCertificate(
                    a.chain_id, a.height, a.block_hash, a.state_root, a.signatures
                )
            )

    def reader(self) -> AnchorContract:
        return AnchorContract(self.eth.w3, self.address)


@pytest.fixture
def verification(eth: Eth, monkeypatch: pytest.MonkeyPatch) -> Verification:
    address = AnchorContract.deploy(eth.w3, eth.accounts[0])
    admin = AnchorContract(eth.w3, address, eth.accounts[0])
    admin.register_chain(CHAIN, [eth.accounts[1].address])
    urls: list[str] = []

    def on_eth_tester(
        rpc_url: str,
        contract: str,
        finality: Finality = "finalized",
        *,
        eth_chain_id: int | None = None,
        key_file: Path | None = None,
        timeout_s: float = 10.0,
    ) -> AnchorContract:
        urls.append(rpc_url)
        account = None if key_file is None else load_eth_key(key_file)
        return AnchorContract(
            eth.w3, contract, account, finality=finality, eth_chain_id=eth_chain_id
        )

    monkeypatch.setattr(audit, "connect_contract", on_eth_tester)
    return Verification(eth, address, urls)


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env={"MEDCHAIN_NODE": None})
    assert result.exit_code == code, result.output
    return result.output


# -- node homes ---------------------------------------------------------------------

PEERS = ("hospital-b", "hospital-c")


@pytest.fixture
def home(tmp_path: Path, verification: Verification) -> Iterator[Chain]:
    """A stopped node's home: 30 blocks, anchors up to 20 on the verification chain,
    an anchor section and two peers in its config.json."""
    chain = make_chain(tmp_path / "node", 30)
    verification.anchor(chain.anchors(upto=20))
    peers = tuple(PeerConfig(name, bytes([i]) * 32, b"PEM") for i, name in enumerate(PEERS))
    anchor = verification.settings.to_json()
    config = NodeConfig("hospital-a", peers=peers, extra={"anchor": anchor})
    write_config(chain.home, config)
    (chain.home / "blobs").mkdir(exist_ok=True)
    (chain.home / "blobs" / "kept").write_bytes(b"a record body")
    chain.local.close()
    yield chain


def _blocks(home: Chain) -> list[Block]:
    with ChainStore(home.path) as store:
        return list(store.blocks())


def test_recover_cuts_the_store_back_to_the_last_anchor(home: Chain) -> None:
    blocks = _blocks(home)
    rewrite(home.path, 23, other_tx(home, blocks[23]))  # an edit above the anchor at 20
    out = cli("recover", "--home", str(home.home))
    assert "old tip:        30" in out and "kept height:    20" in out
    assert "removed blocks: 10" in out and "a final anchor vouches" in out
    assert f"{STORE_FILE}.bad-20" in out and "resyncs" in out
    with ChainStore(home.path) as store:
        assert store.latest_height() == 20
        assert store.block_at(20) == blocks[20]


def test_recover_without_anchor_settings_says_what_to_add(tmp_path: Path) -> None:
    chain = make_chain(tmp_path / "node", 3)
    chain.local.close()
    write_config(chain.home, NodeConfig("lonely"))
    out = cli("recover", "--home", str(chain.home), code=1)
    assert "no anchor section" in out
    with ChainStore(chain.path) as store:
        assert store.latest_height() == 3


def _fork(home: Chain, out: Path, *extra: str, code: int = 0) -> str:
    return cli("fork", "--home", str(home.home), "--out", str(out), *extra, code=code)


def test_fork_adopt_and_register_the_new_chain(
    home: Chain, verification: Verification, tmp_path: Path
) -> None:
    newcomers = [AccountKeys.generate() for _ in range(3)]
    out = tmp_path / "fork.json"
    adds = [f"--add=n{i}={k.public_key.hex()}" for i, k in enumerate(newcomers)]
    shown = _fork(home, out, "--keep", "v0", *adds, "--time-ms", "1800000000000")
    fork = read_genesis(out)
    anchored = _blocks(home)[20].header
    assert fork.chain_id == f"{CHAIN}-fork-20"
    assert fork.origin is not None
    assert (fork.origin.height, fork.origin.block_hash) == (20, block_hash(anchored))
    assert fork.origin.state_root == anchored.state_root
    assert [v.name for v in fork.validators] == ["v0", "n0", "n1", "n2"]
    assert "left out:    v1, v2, v3" in shown and "adopt-genesis" in shown
    assert block_hash(anchored).hex() in shown

    out_text = cli(
        "node", "adopt-genesis", "--home", str(home.home), "--genesis", str(out),
        "--drop-peer", "hospital-c",
    )  # fmt: skip
    archive = home.home / f"archive-{CHAIN}"
    assert str(archive) in out_text
    assert (archive / STORE_FILE).is_file() and (archive / GENESIS_FILE).is_file()
    assert read_genesis(archive / GENESIS_FILE) == home.genesis
    assert not (home.home / STORE_FILE).exists() and not (home.home / WAL_FILE).exists()
    assert read_genesis(home.home / GENESIS_FILE) == fork
    assert [p.name for p in read_config(home.home).peers] == ["hospital-b"]
    assert (home.home / "blobs" / "kept").read_bytes() == b"a record body"
    forked = LocalChain.open(home.home)  # the node starts on the fork
    try:
        assert (forked.chain_id, forked.store.latest_height()) == (fork.chain_id, 0)
    finally:
        forked.close()

    eth_key = new_eth_key(home.home / "eth.key")
    w3 = verification.eth.w3
    funding = {"from": w3.eth.accounts[0], "to": eth_key.address, "value": Wei(FUNDS_WEI)}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(funding))  # type: ignore[arg-type]
    submitter = verification.eth.accounts[2].address
    shown = cli("anchor", "register", "--home", str(home.home), "--submitter", submitter.lower())
    assert fork.chain_id in shown and eth_key.address in shown
    assert verification.reader().submitters(fork.chain_id) == [submitter]
    again = cli("anchor", "register", "--home", str(home.home), "--submitter", submitter, code=1)
    assert "already registered" in again


def test_fork_refuses_what_it_cannot_build(home: Chain, tmp_path: Path) -> None:
    out = tmp_path / "fork.json"
    assert "name the fork's validators" in _fork(home, out, code=1)
    assert "not a validator" in _fork(home, out, "--keep", "mallory", code=1)
    assert "above 20" in _fork(home, out, "--keep", "v0", "--height", "25", code=1)
    assert "no final, valid anchor at height 12" in _fork(
        home, out, "--keep", "v0", "--height", "12", code=1
    )
    assert not out.exists()
    out.write_text("{}")
    assert "already exists" in _fork(home, out, "--keep", "v0", code=1)


def test_fork_needs_a_final_anchor_the_store_matches(home: Chain, tmp_path: Path) -> None:
    blocks = _blocks(home)
    rewrite(home.path, 3, other_tx(home, blocks[3]))  # below every anchor
    out = _fork(home, tmp_path / "fork.json", "--keep", "v0", code=1)
    assert "no final, valid anchor" in out and "height 3" in out


def test_adopt_genesis_refuses_and_leaves_the_home_alone(home: Chain, tmp_path: Path) -> None:
    before = sorted(p.name for p in home.home.iterdir())

    def adopt(genesis: Path, *extra: str) -> str:
        return cli(
            "node", "adopt-genesis", "--home", str(home.home), "--genesis", str(genesis),
            *extra, code=1,
        )  # fmt: skip

    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert "not a valid genesis" in adopt(garbage)
    assert "already runs" in adopt(home.home / GENESIS_FILE)
    other = tmp_path / "other.json"
    write_genesis(other, dataclasses.replace(home.genesis, time_ms=home.genesis.time_ms + 1))
    assert "is not a fork" in adopt(other)
    out = tmp_path / "fork.json"
    _fork(home, out, "--keep", "v0", "--keep", "v1")
    assert "lists no peer nobody" in adopt(out, "--drop-peer", "nobody")
    tampered = json.loads(out.read_text())
    tampered["state"][0]["value"] = "00"
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    assert "corrupt" in adopt(tmp_path / "tampered.json")
    assert sorted(p.name for p in home.home.iterdir()) == before


# -- verify -------------------------------------------------------------------------


class AnchoringNode(FakeNode):
    """A node whose config.json anchors on `settings`."""

    settings: AnchorSettings | None = None

    def anchoring_status(self) -> AnchoringStatus | None:
        if self.settings is None:
            return None
        return AnchoringStatus(self.settings, True, 0, 0, 0, "", None, 0)


@pytest.fixture
def node(tmp_path: Path, verification: Verification) -> Iterator[tuple[Chain, AnchoringNode]]:
    chain = make_chain(tmp_path / "node", 30)
    fake = AnchoringNode(chain.local)
    fake.settings = verification.settings
    yield chain, fake
    chain.local.close()


def _audit(fake: FakeNode, **options: object) -> audit.AuditResult:
    fake.registry = CollectorRegistry()  # each API made registers its metrics
    transport = SyncASGITransport(create_api(fake))
    return audit.audit_node("http://node", transport=transport, **options)  # type: ignore[arg-type]


def test_a_node_whose_blocks_match_the_anchors_is_verified(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    chain, fake = node
    verification.anchor(chain.anchors())
    result = _audit(fake)
    assert result.exit_code == audit.EXIT_OK and result.alarms == ()
    report = result.report
    assert (report.anchors_total, report.anchors_final, report.last_verified_height) == (6, 6, 30)
    assert result.contract == verification.address and result.finality == 1
    assert verification.urls == ["http://eth.invalid:8545"]  # the node's own endpoint
    assert result.to_json()["ok"] is True


def test_a_conflicting_chain_is_the_alarm(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    """The validators anchored another block at 20 than the one this node serves."""
    chain, fake = node
    honest = make_anchor(chain.validators[:3], 20, b"\x20" * 32, b"\x21" * 32)
    verification.anchor([*chain.anchors(upto=15), honest])
    result = _audit(fake)
    assert result.exit_code == audit.EXIT_ALARM
    mismatch = result.report.first_mismatch
    assert mismatch is not None and (mismatch.height, mismatch.what) == (20, "block_hash")
    assert mismatch.expected == honest.block_hash
    assert result.report.last_verified_height == 15
    assert "height 20 contradicts a final anchor" in result.alarms[0]


def test_conflicts_on_the_contract_and_forged_anchors_are_alarms(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    chain, fake = node
    anchors = chain.anchors(upto=10)
    verification.anchor(anchors)
    outsider = [AccountKeys.generate() for _ in range(3)]
    forged = make_anchor(outsider, 15, b"\x15" * 32, b"\x16" * 32)
    second = dataclasses.replace(anchors[0], block_hash=b"\x05" * 32)
    verification.anchor([forged, second])
    result = _audit(fake)
    assert result.exit_code == audit.EXIT_ALARM
    assert result.report.invalid_anchors == (15,)
    assert [c.height for c in result.conflicts] == [5]
    assert result.conflicts[0].conflicting.block_hash == b"\x05" * 32
    assert len(result.alarms) == 2


def test_pending_anchors_and_a_node_behind_are_not_alarms(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    chain, fake = node
    ahead = [make_anchor(chain.validators[:3], h, bytes([h]) * 32, b"\x01" * 32) for h in (35, 40)]
    verification.anchor([*chain.anchors(), *ahead])  # the node holds 30 blocks
    result = _audit(fake)
    assert result.exit_code == audit.EXIT_OK
    assert (result.not_compared, result.report.last_verified_height) == (2, 30)
    result = _audit(fake, finality=10**6)  # none final yet
    assert result.exit_code == audit.EXIT_OK
    assert (result.report.anchors_final, result.report.anchors_pending) == (0, 8)
    assert result.report.last_verified_height == -1


def test_the_older_hashes_answer_is_understood(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    chain, fake = node
    verification.anchor(chain.anchors())
    api = SyncASGITransport(create_api(fake))

    def older(request: httpx.Request) -> httpx.Response:
        response = api.handle_request(request)
        if request.url.path != "/v1/chain/hashes":
            return response
        blocks = response.json()["blocks"]
        return httpx.Response(200, json={"hashes": {h: b["hash"] for h, b in blocks.items()}})

    result = audit.audit_node("http://node", transport=httpx.MockTransport(older))
    assert result.exit_code == audit.EXIT_OK and result.report.last_verified_height == 30


def test_a_node_that_does_not_anchor_needs_the_contract_named(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    chain, fake = node
    verification.anchor(chain.anchors())
    fake.settings = None
    with pytest.raises(MedchainError, match=r"does not anchor.*pass --eth-url and --contract"):
        _audit(fake)
    with pytest.raises(MedchainError, match="pass --contract"):
        _audit(fake, eth_url="http://127.0.0.1:8545")
    result = _audit(fake, eth_url="http://eth.example:8545", contract=verification.address)
    assert result.exit_code == audit.EXIT_OK and result.finality == "finalized"
    assert result.rpc_url == "http://eth.example:8545"


def test_an_unreachable_node_or_endpoint_is_a_clear_error() -> None:
    with pytest.raises(NodeUnreachable, match="cannot reach the medchain node"):
        audit.audit_node("http://127.0.0.1:9", timeout_s=2)
    out = cli("verify", "--node", "http://127.0.0.1:9", code=1)
    assert "node_unreachable" in out and "check --node" in out

    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

    with pytest.raises(MedchainError, match="does not serve /v1/anchoring"):
        audit.audit_node("http://node", transport=httpx.MockTransport(missing))


@dataclass
class Served:
    url: str
    chain: Chain


@pytest.fixture
def served_node(tmp_path: Path, verification: Verification) -> Iterator[Served]:
    """The API of an anchoring node on a socket, its chain built in the server thread."""
    made: dict[str, Chain] = {}

    def make() -> AnchoringNode:
        made["chain"] = make_chain(tmp_path / "node", 30)
        fake = AnchoringNode(made["chain"].local)
        fake.settings = verification.settings
        return fake

    with served(make) as running:
        chain = made["chain"]
        verification.anchor(running.call(lambda _: chain.anchors(upto=15)))
        yield Served(running.url, chain)
        running.call(lambda _: chain.local.close())


def test_verify_prints_the_verdict_and_exits_by_it(
    served_node: Served, verification: Verification
) -> None:
    out = cli("verify", "--node", served_node.url)
    assert "last verified height" in out and "15" in out and "matches its anchor" in out
    conflicting = make_anchor(served_node.chain.validators[:3], 20, b"\x20" * 32, b"\x21" * 32)
    verification.anchor([conflicting])
    out = cli("verify", "--node", served_node.url, code=2)
    assert "ALARM" in out and "block_hash" in out and (b"\x20" * 32).hex() in out
    document = json.loads(cli("verify", "--node", served_node.url, "--json", code=2))
    assert document["exit_code"] == 2 and document["report"]["first_mismatch"]["height"] == 20
    assert document["verification_chain"]["contract"] == verification.address


def test_verify_names_an_unreachable_verification_chain(
    served_node: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real client, over HTTP, to a closed port
    out = cli("verify", "--node", served_node.url, "--eth-url", "http://127.0.0.1:9", code=1)
    assert "verification_chain_unavailable" in out and "--eth-url" in out


def test_nothing_anchored_yet_is_not_a_pass_on_a_wrong_contract(
    node: tuple[Chain, AnchoringNode],
) -> None:
    _, fake = node
    result = _audit(fake)
    assert result.exit_code == audit.EXIT_OK and result.report.anchors_total == 0
    with pytest.raises(AnchorError, match=r"no anchor contract answers.*--contract"):
        _audit(fake, contract="0x" + "12" * 20)


def test_the_nodes_own_alarm_is_shown_and_counts(
    node: tuple[Chain, AnchoringNode], verification: Verification
) -> None:
    chain, _ = node
    verification.anchor(chain.anchors())
    own = compare_hashes({}, chain.anchors(upto=5), chain.keys, chain_id=CHAIN)
    damaged = dataclasses.replace(own, first_mismatch=Mismatch(7, "tx_root", b"\x01", b"\x02"))

    class Alarmed(AnchoringNode):
        def anchoring_status(self) -> AnchoringStatus | None:
            status = super().anchoring_status()
            assert status is not None
            return dataclasses.replace(status, report=damaged, last_error="rpc timed out")

    alarmed = Alarmed(chain.local)
    alarmed.settings = verification.settings
    result = _audit(alarmed)
    assert result.report.ok and result.exit_code == audit.EXIT_ALARM
    assert result.alarms == ("the node's own check reports a mismatch at height 7 (tx_root)",)
    assert result.node_error == "rpc timed out"


def test_anchor_key_creates_the_node_key_once_and_shows_its_address(tmp_path: Path) -> None:
    out = cli("anchor", "key", "--home", str(tmp_path))
    account = load_eth_key(tmp_path / ETH_KEY_FILE)
    assert account.address in out and "new Ethereum key" in out
    assert (tmp_path / ETH_KEY_FILE).stat().st_mode & 0o077 == 0  # the owner's only
    again = cli("anchor", "key", "--home", str(tmp_path))
    assert "already holds" in again and account.address in again
    assert load_eth_key(tmp_path / ETH_KEY_FILE).key == account.key  # never replaced
