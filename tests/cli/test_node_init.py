"""`medchain node init`, `medchain node add-peer` and `medchain genesis new|show`:
the homes of a network set up one organisation at a time, as docs/DEPLOY.md tells
it; the last test runs such a network (slow)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from medchain.cli._node_init import genesis_app, node_add_peer, node_init
from medchain.crypto import AccountKeys, _keyfile, load_keys, save_keys
from medchain.node import free_port_base, read_config, read_genesis, start_node
from medchain.p2p import certificate_key
from tests.node.netharness import REQUEST_S, START_S, STOP_S, wait_for

# the commands as `medchain node …` and `medchain genesis …` register them
cli = typer.Typer()
node_cli = typer.Typer()
node_cli.command("init")(node_init)
node_cli.command("add-peer")(node_add_peer)
cli.add_typer(node_cli, name="node")
cli.add_typer(genesis_app, name="genesis")
runner = CliRunner()


def run(*args: str, ok: bool = True) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == (0 if ok else 1), result.output
    return result.output


def init(home: Path, name: str, *extra: str) -> str:
    """The new node's key (hex), as `node init` prints it."""
    out = run("node", "init", "--home", str(home), "--name", name, *extra)
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("node key:"))


def test_init_writes_key_certificate_and_a_config_without_peers(tmp_path: Path) -> None:
    home = tmp_path / "hospital-a"
    out = run(
        "node", "init", "--home", str(home), "--name", "hospital-a",
        "--p2p-host", "10.1.0.5", "--p2p-port", "7000", "--api-port", "7001",
    )  # fmt: skip
    keys = load_keys(home / "node.key")
    assert keys.public_key.hex() in out and keys.address_text in out
    assert str(home / "node.crt") in out
    assert certificate_key((home / "node.crt").read_bytes()) == keys.public_key
    config = read_config(home)
    assert (config.name, config.p2p_host, config.p2p_port) == ("hospital-a", "10.1.0.5", 7000)
    assert (config.api_host, config.api_port, config.peers) == ("127.0.0.1", 7001, ())
    assert (home / "node.key").stat().st_mode & 0o077 == 0


def test_init_keeps_a_key_already_there_but_not_a_protected_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_keyfile, "SCRYPT_N", 2**15)  # the cheapest cost files may have
    keys = AccountKeys.generate()
    (tmp_path / "a").mkdir()
    save_keys(tmp_path / "a" / "node.key", keys)
    assert init(tmp_path / "a", "a") == keys.public_key.hex()
    assert load_keys(tmp_path / "a" / "node.key").public_key == keys.public_key

    (tmp_path / "b").mkdir()
    save_keys(tmp_path / "b" / "node.key", keys, passphrase="a node's secret passphrase")
    out = run("node", "init", "--home", str(tmp_path / "b"), "--name", "b", ok=False)
    assert "passphrase-protected" in out
    assert not (tmp_path / "b" / "config.json").exists()


def test_init_warns_of_a_node_key_others_may_read(tmp_path: Path) -> None:
    home = tmp_path / "a"
    save_keys(home / "node.key", AccountKeys.generate())
    (home / "node.key").chmod(0o644)
    result = runner.invoke(cli, ["node", "init", "--home", str(home), "--name", "a"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: key file {home / 'node.key'} has mode 0644: other users of this machine "
        f"may read or change it; restrict it with `chmod 600 {home / 'node.key'}`"
    ]


def test_init_refuses_an_existing_config_and_a_bad_name(tmp_path: Path) -> None:
    init(tmp_path / "a", "a")
    before = (tmp_path / "a" / "node.key").read_text()
    assert "already exists" in run(
        "node", "init", "--home", str(tmp_path / "a"), "--name", "x", ok=False
    )
    assert (tmp_path / "a" / "node.key").read_text() == before
    out = run("node", "init", "--home", str(tmp_path / "b"), "--name", "n" * 65, ok=False)
    assert "bad --name" in out and not (tmp_path / "b").exists()


def test_add_peer_appends_to_the_allow_list(tmp_path: Path) -> None:
    a_key, b_key, c_key = (
        init(tmp_path / "a", "a"),
        init(tmp_path / "b", "b"),
        init(tmp_path / "c", "c"),
    )
    home = str(tmp_path / "a")
    out = run(
        "node", "add-peer", "--home", home, "--name", "b", "--key", b_key,
        "--cert", str(tmp_path / "b" / "node.crt"), "--host", "10.1.0.6", "--port", "9600",
    )  # fmt: skip
    assert "restart the node" in out
    out = run(
        "node", "add-peer", "--home", home, "--name", "c", "--key", c_key,
        "--cert", str(tmp_path / "c" / "node.crt"),
    )  # fmt: skip
    assert "dials in" in out
    peers = read_config(tmp_path / "a").peers
    assert [(p.name, p.key.hex(), p.host, p.port) for p in peers] == [
        ("b", b_key, "10.1.0.6", 9600),
        ("c", c_key, None, None),
    ]
    assert peers[0].cert_pem == (tmp_path / "b" / "node.crt").read_bytes()
    assert a_key not in {p.key.hex() for p in peers}


@pytest.mark.parametrize(
    ("name", "key", "cert", "extra", "error"),
    [
        ("x", "abcd", "c", [], "not a node key"),
        ("x", "c", "b", [], "certificate of another key"),
        ("x", "c", "c", ["--host", "10.1.0.6"], "give both --host and --port"),
        ("b", "c", "c", [], "already lists peer 'b'"),
        ("x", "b", "b", [], "already lists peer 'b'"),
        ("x", "a", "a", [], "this node's own key"),
    ],
)
def test_add_peer_refuses(
    tmp_path: Path, name: str, key: str, cert: str, extra: list[str], error: str
) -> None:
    """`key` and `cert` name a node (a, b or c) whose key or certificate to give."""
    keys = {n: init(tmp_path / n, n) for n in "abc"}
    home = str(tmp_path / "a")
    run(
        "node", "add-peer", "--home", home, "--name", "b", "--key", keys["b"],
        "--cert", str(tmp_path / "b" / "node.crt"),
    )  # fmt: skip
    out = run(
        "node", "add-peer", "--home", home, "--name", name, "--key", keys.get(key, key),
        "--cert", str(tmp_path / cert / "node.crt"), *extra, ok=False,
    )  # fmt: skip
    assert error in out
    assert len(read_config(tmp_path / "a").peers) == 1


def test_genesis_new_writes_what_the_consortium_agreed(tmp_path: Path) -> None:
    a, b = AccountKeys.generate(), AccountKeys.generate()
    out_file = tmp_path / "genesis.json"
    out = run(
        "genesis", "new", "--chain-id", "hospitals", "--consensus", "pbft",
        "--validator", f"a={a.public_key.hex()}", "--validator", f"b={b.public_key.hex()}",
        "--alloc", f"{a.address_text}=1000", "--param", "min_fee=2", "--param", "max_block_txs=100",
        "--time-ms", "1700000000000", "--out", str(out_file),
    )  # fmt: skip
    genesis = read_genesis(out_file)
    assert (genesis.chain_id, genesis.time_ms) == ("hospitals", 1_700_000_000_000)
    assert [(v.name, v.public_key) for v in genesis.validators] == [
        ("a", a.public_key),
        ("b", b.public_key),
    ]
    assert [(x.address, x.amount) for x in genesis.allocations] == [(a.address, 1000)]
    params = genesis.params
    assert (params.consensus, params.min_fee, params.max_block_txs) == ("pbft", 2, 100)
    network = next(line for line in out.splitlines() if line.startswith("network id:"))
    assert network.split()[-1].startswith("hospitals/")
    assert network in run("genesis", "show", str(out_file))
    assert json.loads(out_file.read_text())["params"]["consensus"] == "pbft"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--consensus", "raft"], "unknown consensus engine"),
        (["--param", "block_size=1"], "not a chain parameter"),
        (["--param", "min_fee=-1"], "whole number"),
        (["--alloc", "mc1nothing=5"], "not a valid medchain address"),
        (["--alloc", "{address}=0"], "positive whole number"),
        (["--validator", "b={key}"], "listed twice"),
        (["--validator", "c=00ff"], "64 hex digits"),
        (["--validator", "nokey"], "NAME=KEYHEX"),
    ],
)
def test_genesis_new_refuses(tmp_path: Path, args: list[str], error: str) -> None:
    keys = AccountKeys.generate()
    filled = [a.format(address=keys.address_text, key=keys.public_key.hex()) for a in args]
    out = run(
        "genesis", "new", "--chain-id", "x", "--validator", f"a={keys.public_key.hex()}",
        "--out", str(tmp_path / "g.json"), *filled, ok=False,
    )  # fmt: skip
    assert error in out and not (tmp_path / "g.json").exists()


def test_genesis_new_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "g.json").write_text("agreed")
    key = AccountKeys.generate().public_key.hex()
    out = run(
        "genesis", "new", "--chain-id", "x", "--validator", f"a={key}",
        "--out", str(tmp_path / "g.json"), ok=False,
    )  # fmt: skip
    assert "already exists" in out and (tmp_path / "g.json").read_text() == "agreed"


@pytest.mark.slow
def test_homes_set_up_with_these_commands_run_a_network(tmp_path: Path) -> None:
    """Four validators (listening on every interface, the default) and an observer
    that only dials out, each home set up alone, the consortium's genesis copied to
    each: they commit blocks and agree."""
    base = free_port_base(5)
    names = ["a", "b", "c", "d", "edge"]
    homes = {n: tmp_path / n for n in names}
    keys = {
        n: init(homes[n], n, "--p2p-port", str(base + 500 + i),
                "--api-port", str(base + i))
        for i, n in enumerate(names)
    }  # fmt: skip
    validators = names[:4]
    run(
        "genesis", "new", "--chain-id", "consortium", "--consensus", "afbft",
        *(f"--validator={n}={keys[n]}" for n in validators),
        "--out", str(tmp_path / "genesis.json"),
    )  # fmt: skip
    for n in names:
        shutil.copy(tmp_path / "genesis.json", homes[n] / "genesis.json")
        for j, m in enumerate(names):
            if m == n or (n != "edge" and m == "edge"):
                continue
            run(
                "node", "add-peer", "--home", str(homes[n]), "--name", m, "--key", keys[m],
                "--cert", str(homes[m] / "node.crt"),
                "--host", "127.0.0.1", "--port", str(base + 500 + j),
            )  # fmt: skip
        if n != "edge":  # the edge server dials in
            run(
                "node", "add-peer", "--home", str(homes[n]), "--name", "edge",
                "--key", keys["edge"], "--cert", str(homes["edge"] / "node.crt"),
            )  # fmt: skip
    for n in names:
        config = json.loads((homes[n] / "config.json").read_text())
        fast = {"block_interval_ms": 250, "round_timeout_ms": 1_000, "proposal_window_ms": 100}
        config["consensus"] = fast
        (homes[n] / "config.json").write_text(json.dumps(config))

    procs: list[subprocess.Popen[bytes]] = []
    http = httpx.Client(timeout=REQUEST_S, trust_env=False)
    urls = {n: f"http://127.0.0.1:{base + i}" for i, n in enumerate(names)}

    def height(n: str) -> int:
        return int(http.get(f"{urls[n]}/v1/status").json()["height"])

    def block(n: str, h: int) -> tuple[str, str]:
        doc = http.get(f"{urls[n]}/v1/blocks/{h}").json()
        return doc["hash"], doc["state_root"]

    try:
        procs += [start_node(homes[n]) for n in names]
        wait_for(  # five processes start first: slow on a busy machine
            lambda: all(height(n) >= 4 for n in names), START_S, "every node to reach height 4"
        )
        status = http.get(f"{urls['edge']}/v1/status").json()
        assert status["validator"] is False
        for h in range(1, 5):
            assert len({block(n, h) for n in names}) == 1, f"disagreement at height {h}"
    except BaseException:
        for n in names:
            print(f"--- {n} ---\n{(homes[n] / 'node.log').read_text(errors='replace')[-2000:]}")
        raise
    finally:
        http.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
