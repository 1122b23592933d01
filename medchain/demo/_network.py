"""The demo on a network: a fresh devnet of node processes it started, or nodes
given with --node. The story's clients use the first node (blobs stay on the node
they were PUT to); the other nodes are asked whether they agree."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from medchain.client import ChainBackend, HttpChain, MedchainClient
from medchain.crypto import AccountKeys, load_keys
from medchain.demo._devnet import DemoDevnet
from medchain.demo._narration import Story
from medchain.demo._stage import Cast
from medchain.node import NODE_KEY_FILE, ORGS_DIR, STORE_FILE, DevnetError, NetNode, net_nodes
from medchain.types import MedchainError, Receipt, Tx, block_hash

SYNC_TIMEOUT_S = 30.0


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
        orgs_dir: Path | None = None,
    ) -> None:
        self.nodes = nodes
        self.views = [HttpChain(n.url) for n in nodes]
        self._bank = bank
        self._validator = validator
        self.devnet = devnet
        self.about = about
        self._orgs_dir = orgs_dir

    @classmethod
    def for_devnet(cls, net: DemoDevnet) -> NetworkStage:
        """The devnet's funded account pays; its first validator stakes on itself."""
        first = net.nodes[0]
        return cls(
            net_nodes(net.devnet),
            bank=load_keys(net.devnet.faucet_key),
            validator=load_keys(first.home / NODE_KEY_FILE),
            devnet=net,
            orgs_dir=net.devnet.home / ORGS_DIR,
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

    @property
    def orgs_dir(self) -> Path | None:
        return self._orgs_dir

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
        return self.chain.submit_raw(raw)

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


__all__ = ["NetworkStage"]
