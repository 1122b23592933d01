"""What the story runs on: its cast of actors and the `Stage` a chain offers it
beyond the SDK's ChainBackend (raw submission, finding a committed transaction,
whether the nodes agree, where the database files are, a restart)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from medchain.client import ChainBackend
from medchain.crypto import AccountKeys
from medchain.demo._narration import Story
from medchain.types import Receipt, Tx


@dataclass(frozen=True, slots=True)
class Cast:
    alice: AccountKeys
    bob: AccountKeys
    carol: AccountKeys
    lab: AccountKeys
    mallory: AccountKeys

    @property
    def names(self) -> dict[str, AccountKeys]:
        return {
            "Alice (patient)": self.alice,
            "Dr. Bob (cardiologist)": self.bob,
            "Dr. Carol (GP)": self.carol,
            "the research institute's account": self.lab,
            "Mallory (not registered)": self.mallory,
        }


class Stage(Protocol):
    """The chain the story runs on, beyond what ChainBackend offers."""

    @property
    def chain(self) -> ChainBackend:
        """The chain the story's clients submit to and read from."""
        ...

    @property
    def bank(self) -> AccountKeys | None:
        """A funded account to pay the actors from; None: steps needing funds are skipped."""
        ...

    @property
    def validator(self) -> AccountKeys | None:
        """A validator's keys, to stake and vote for itself; None: the bank votes instead."""
        ...

    @property
    def orgs_dir(self) -> Path | None:
        """Where the member organisations' key files are (`<org_id>/admin.key`,
        `org.key`); None if the demo holds none."""
        ...

    def banner(self) -> str: ...

    def snapshot(self) -> tuple[int, bytes]:
        """The height and state root of the chain the clients use."""
        ...

    def unchanged(self, before: tuple[int, bytes]) -> tuple[str, bool]:
        """The claim that nothing was applied since `before`, and whether it holds."""
        ...

    def find_tx(self, tx_hash: bytes) -> tuple[int, Tx]:
        """A committed transaction and its height, read back from the chain."""
        ...

    def submit_raw(self, raw: bytes) -> Receipt | None:
        """Submit bytes as a client would send them; raises the chain's refusal.
        Returns the receipt if the transaction is (already) committed."""
        ...

    def peers(self) -> list[tuple[str, ChainBackend]]:
        """Other nodes' views of the same chain (none for a single process)."""
        ...

    def agree(self, story: Story) -> None:
        """Check that every known node holds the same chain so far."""
        ...

    def storage_files(self) -> list[Path] | None:
        """Every file of every node's chain database; None if they are out of reach."""
        ...

    def restart(self, story: Story, cast: Cast, record_id: bytes) -> None:
        """The last section: show the chain surviving a restart."""
        ...


__all__ = ["Cast", "Stage"]
