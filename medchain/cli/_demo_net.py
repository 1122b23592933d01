"""The demo on a network: a fresh devnet of node processes it starts (and always
stops), or nodes given with --node. The story's clients use the first node (blobs
stay on the node they were PUT to); the other nodes are asked whether they agree."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

from medchain.cli._common import console, err_console
from medchain.cli._demo_story import Cast, Story
from medchain.client import ChainBackend, HttpChain, MedchainClient, NodeError
from medchain.crypto import AccountKeys, load_keys
from medchain.node import (
    NODE_KEY_FILE,
    START_TIMEOUT_S,
    STORE_FILE,
    DevnetError,
    DevnetNode,
    DevnetProcesses,
    NetNode,
    ProcessFailed,
    given_nodes,
    health_status,
    local_devnet,
    net_nodes,
    signals_raise,
)
from medchain.types import MedchainError, Receipt, Tx, block_hash, decode

SYNC_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not _holds(condition):
        if time.monotonic() > deadline:
            raise DevnetError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def _holds(condition: Callable[[], bool]) -> bool:
    with contextlib.suppress(httpx.HTTPError, MedchainError):
        return condition()
    return False


class DemoDevnet(DevnetProcesses):
    """A devnet whose node processes this demo started, so it may kill, restart and
    stop them (and must stop them, whatever happens)."""

    def __init__(self, home: Path, validators: int = 4, consensus: str = "afbft") -> None:
        devnet = local_devnet(
            home,
            validators,
            consensus,
            chain_id="medchain-demo",
            block_interval_ms=300,
            round_timeout_ms=1_000,
        )
        super().__init__(devnet, STOP_TIMEOUT_S)

    @property
    def nodes(self) -> tuple[DevnetNode, ...]:
        return self.devnet.nodes

    def healthy(self, name: str) -> bool:
        return health_status(f"{self.node(name).api_url}/health", 1.0) == 200

    def bring_up(self, names: list[str] | None = None) -> float:
        """Start the nodes (all by default) and wait until each serves /health; a
        status line shows each node's progress. Returns the seconds it took."""
        names = names or [n.name for n in self.nodes]
        self.start_nodes(names)
        processes = f"{len(names)} node process{'es' if len(names) > 1 else ''}"
        with console.status("") as status:

            def show(health: Mapping[str, int | None], elapsed: float) -> None:
                marks = "  ".join(f"{n} {_progress(health[n])}" for n in names)
                status.update(f"starting {processes}  {marks}  ({elapsed:.1f} s)")

            return self.wait_healthy(names, START_TIMEOUT_S, show)


def _progress(health: int | None) -> str:
    """/health 200: up; another status: serving but cut off from its peers."""
    if health == 200:
        return "[green]✓ up[/]"
    return "[yellow]… starting[/]" if health is None else "[yellow]… finding peers[/]"


@contextlib.contextmanager
def running_devnet(home: Path) -> Iterator[DemoDevnet]:
    """A fresh 4-validator AFBFT devnet in `home`, stopped on the way out even when
    the demo fails, is interrupted or gets a SIGTERM (`timeout`, `kill`, a CI runner);
    a node that crashed has its log shown."""
    with signals_raise((signal.SIGTERM,), lambda signum: SystemExit(128 + signum)):
        net = DemoDevnet(home)
        with _stopped_after(net):
            yield net


@contextlib.contextmanager
def _stopped_after(net: DemoDevnet) -> Iterator[None]:
    try:
        took = net.bring_up()
        console.print(
            f"[green]✓[/] {len(net.nodes)} validators ({net.devnet.consensus}) up in "
            f"{took:.1f} s, in {net.devnet.home}"
        )
        for n in net.nodes:
            pid = net.children[n.name].pid
            console.print(f"  {n.name}  pid {pid:<7} API {n.api_url}  docs {n.api_url}/docs")
        yield
    except ProcessFailed as exc:
        err_console.print(exc.tail, markup=False, highlight=False)
        raise
    except BaseException:
        for name in net.crashed():
            err_console.print(f"[red]{name} crashed[/]; the end of its log:")
            tail = net.children[name].program.tail(15)
            err_console.print(tail, markup=False, highlight=False)
        raise
    finally:
        began = time.monotonic()
        net.stop_all()
        took = time.monotonic() - began
        console.print(f"stopped the devnet's {len(net.children)} node processes ({took:.1f} s)")


class NetworkStage:
    """The story's clients on the first node; the others compared with it."""

    def __init__(
        self,
        nodes: list[NetNode],
        *,
        bank: AccountKeys | None,
        validator: AccountKeys | None = None,
        devnet: DemoDevnet | None = None,
        about: str = "",
    ) -> None:
        self.nodes = nodes
        self.views = [HttpChain(n.url) for n in nodes]
        self._bank = bank
        self._validator = validator
        self.devnet = devnet
        self.about = about

    @classmethod
    def for_devnet(cls, net: DemoDevnet) -> NetworkStage:
        """The devnet's funded account pays; its first validator stakes on itself."""
        first = net.nodes[0]
        return cls(
            net_nodes(net.devnet),
            bank=load_keys(net.devnet.faucet_key),
            validator=load_keys(first.home / NODE_KEY_FILE),
            devnet=net,
            about=(
                f"a fresh {len(net.nodes)}-validator {net.devnet.consensus.upper()} devnet "
                f"[bold]{net.devnet.chain_id}[/]: node processes on 127.0.0.1"
            ),
        )

    def close(self) -> None:
        for view in self.views:
            view.close()

    @property
    def chain(self) -> HttpChain:
        return self.views[0]

    @property
    def bank(self) -> AccountKeys | None:
        return self._bank

    @property
    def validator(self) -> AccountKeys | None:
        return self._validator

    def banner(self) -> str:
        first = self.nodes[0]
        genesis = self.chain.genesis
        about = self.about or (
            f"the network of chain [bold]{genesis.chain_id}[/] "
            f"({genesis.params.consensus.upper()}), {len(self.nodes)} node(s) known"
        )
        where = first.url if first.name == first.url else f"{first.name} at {first.url}"
        return (
            f"{about}\nthe story's clients talk to {where} "
            f"(API docs: {first.url}/docs); the other nodes are asked whether they agree"
        )

    def snapshot(self) -> tuple[int, bytes]:
        status = self.chain.status()
        return status.height, status.state_root

    def unchanged(self, before: tuple[int, bytes]) -> tuple[str, bool]:
        """No block since `before` carries a transaction, and the state root moved at
        no block but an epoch's first: once any candidate has votes, that block
        records the DPoS committee (on every engine), transactions or not."""
        height, root = self.snapshot()
        epoch = self.chain.params.epoch_blocks
        empty, moved, previous = True, [], before[1]
        for number in range(before[0] + 1, height + 1):
            block = self.chain.block_at(number)
            if block is None:
                return f"{self.nodes[0].name} serves block {number}", False
            empty = empty and not block.txs
            if block.header.state_root != previous:
                moved.append(number)
            previous = block.header.state_root
        allowed = all(epoch > 0 and (h - 1) % epoch == 0 for h in moved)
        where = (
            f"the state root moved only at epoch start {', '.join(map(str, moved))}, "
            "where the chain records its committee"
            if moved
            else "the state root did not move"
        )
        return (
            f"no block since carried a transaction (height {before[0]} → {height}); {where}",
            empty and allowed and previous == root,
        )

    def find_tx(self, tx_hash: bytes) -> tuple[int, Tx]:
        found = self.chain.tx_status(tx_hash)
        block = self.chain.block_at(found.height) if found.height is not None else None
        if found.height is None or found.index is None or block is None:
            raise MedchainError(f"transaction {tx_hash.hex()} is not on {self.nodes[0].name}")
        return found.height, block.txs[found.index]

    def submit_raw(self, raw: bytes) -> Receipt | None:
        """POST /v1/txs with `raw` as a client would encode it, without waiting."""
        try:
            response = httpx.post(f"{self.chain.url}/v1/txs", json={"tx": raw.hex()}, timeout=30)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MedchainError(f"{self.chain.url} did not answer properly ({exc!r})") from None
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise NodeError(
                str(error.get("code", "?")), str(error.get("message", "")), response.status_code
            )
        if body.get("status") != "committed":
            return None
        return decode(Receipt, bytes.fromhex(body["receipt"]["encoded"]))

    def peers(self) -> list[tuple[str, ChainBackend]]:
        return [(n.name, v) for n, v in zip(self.nodes[1:], self.views[1:], strict=True)]

    def agree(self, story: Story) -> None:
        if len(self.views) < 2:
            story.note(
                "one node known: give --node once per node to check that they agree on the chain"
            )
            return
        target = self.chain.status().height
        self._check_same_block(story, target, f"all {len(self.views)} nodes")

    def _check_same_block(self, story: Story, height: int, who: str) -> None:
        wait_until(
            lambda: all(v.status().height >= height for v in self.views),
            SYNC_TIMEOUT_S,
            f"every node to reach height {height}",
        )
        blocks = [v.block_at(height) for v in self.views]
        seen = {(block_hash(b.header), b.header.state_root) for b in blocks if b is not None}
        digest, root = next(iter(seen))
        story.check(
            f"{who} hold the same block {height}: hash {digest.hex()[:12]}…, "
            f"state root {root.hex()[:12]}…",
            len(seen) == 1 and None not in blocks,
        )

    def storage_files(self) -> list[Path] | None:
        if any(n.home is None for n in self.nodes):
            return None
        return sorted(p for n in self.nodes if n.home for p in n.home.glob(STORE_FILE + "*"))

    def restart(self, story: Story, cast: Cast, record_id: bytes) -> None:
        story.section("Crash and recovery: a validator is killed, then restarted")
        if self.devnet is None or len(self.nodes) < 2:
            story.note(
                "skipped: the demo kills and restarts only nodes it started itself "
                "(run it without --node)"
            )
            return
        victim, witness = self.nodes[0], self.views[1]
        self.devnet.kill(victim.name)
        story.check(
            f"{victim.name}, the node the story's clients use, is killed with SIGKILL",
            not self.devnet.healthy(victim.name),
        )
        before = witness.status().height
        granted = MedchainClient(cast.alice, witness).grant(record_id, cast.carol.address)
        where = witness.tx_status(granted.tx_id).height
        story.check(
            f"the other validators keep committing: Alice grants Dr. Carol again through "
            f"{self.nodes[1].name}, in block {where}",
            where is not None and where > before,
        )
        took = self.devnet.bring_up([victim.name])
        target = witness.status().height
        self._check_same_block(
            story,
            target,
            f"{victim.name} is back after {took:.1f} s and catches up: all {len(self.views)} nodes",
        )
        carol = MedchainClient(cast.carol, self.chain)
        story.check(
            f"Dr. Carol reads version 2 through {victim.name}, thanks to the grant it missed",
            carol.read_record(record_id)["valueQuantity"]["value"] == 118,
        )
        story.check(
            f"Alice still reads her record through {victim.name}: its blob store survived",
            MedchainClient(cast.alice, self.chain).read_record(record_id)["id"] == "hr-alice-1",
        )


__all__ = [
    "DemoDevnet",
    "NetworkStage",
    "given_nodes",
    "running_devnet",
]
