"""`medchain demo --local`: the story on an in-process single-validator LocalChain,
quick and without node processes; its restart reopens the data directory."""

from __future__ import annotations

from pathlib import Path

from medchain.client import ChainBackend, MedchainClient
from medchain.crypto import AccountKeys
from medchain.demo._narration import Story
from medchain.demo._stage import Cast
from medchain.node import ORGS_DIR, STORE_FILE, LocalChain
from medchain.types import MedchainError, Receipt, Tx


class LocalStage:
    """The story on a LocalChain in `home`; a restart reopens `home`."""

    def __init__(self, chain: LocalChain, home: Path) -> None:
        self.local = chain
        self.home = home

    @property
    def chain(self) -> ChainBackend:
        return self.local

    @property
    def bank(self) -> AccountKeys:
        return self.local.validator

    @property
    def validator(self) -> AccountKeys:
        return self.local.validator

    @property
    def orgs_dir(self) -> Path:
        """`medchain init` writes the founding organisations' key files here."""
        return self.home / ORGS_DIR

    def banner(self) -> str:
        return (
            f"local chain [bold]{self.local.chain_id}[/] "
            f"(one validator, in this process) in {self.home}"
        )

    def snapshot(self) -> tuple[int, bytes]:
        return self.local.height, self.local.ledger.state_root()

    def unchanged(self, before: tuple[int, bytes]) -> tuple[str, bool]:
        return "height and state root did not move", self.snapshot() == before

    def find_tx(self, tx_hash: bytes) -> tuple[int, Tx]:
        location = self.local.tx_location(tx_hash)
        block = self.local.block_at(location[0]) if location else None
        if location is None or block is None:
            raise MedchainError(f"transaction {tx_hash.hex()} is not on the chain")
        return location[0], block.txs[location[1]]

    def submit_raw(self, raw: bytes) -> Receipt:
        return self.local.submit_raw(raw)

    def peers(self) -> list[tuple[str, ChainBackend]]:
        return []

    def agree(self, story: Story) -> None:
        """One validator in one process: nothing to compare."""

    def storage_files(self) -> list[Path]:
        return sorted(self.home.glob(STORE_FILE + "*"))

    def restart(self, story: Story, cast: Cast, record_id: bytes) -> None:
        story.section("Restart: the data directory restores the exact state")
        height, root = self.snapshot()
        reopened = LocalChain.open(self.home)
        try:
            story.check(
                f"height {height} and state root {root.hex()[:16]}… restored",
                (reopened.height, reopened.ledger.state_root()) == (height, root),
            )
            alice = MedchainClient(cast.alice, reopened)
            story.check(
                "Alice still reads her record after the restart",
                alice.read_record(record_id)["valueQuantity"]["value"] == 118,
            )
        finally:
            reopened.close()


__all__ = ["LocalStage"]
