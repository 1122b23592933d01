"""Block times by height, for `meta.lastUpdated` of what the chain lists only by height
(a vitals batch, a research grant). Remembered: a committed block's time never changes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from medchain.client import ChainBackend
from medchain.types import Block


@runtime_checkable
class _BlocksByHeight(Protocol):
    """A chain that answers a block by height (a node's API and a local chain do)."""

    def block_at(self, height: int) -> Block | None: ...


class BlockTimes:
    def __init__(self, chain: ChainBackend) -> None:
        self._chain = chain
        self._ms: dict[int, int] = {}

    def at(self, height: int) -> int | None:
        """The time of the block at `height`; None if the chain cannot say."""
        if height not in self._ms:
            chain = self._chain
            block = chain.block_at(height) if isinstance(chain, _BlocksByHeight) else None
            if block is None:
                return None
            self._ms[height] = block.header.time_ms
        return self._ms[height]
