"""Commitments of a disclosure log's head: every `interval_s`, if the log has written
entries beyond what the chain holds for its account, `disclosures.commit` (seq, head,
api_url). `HeadCommitter` is what a node and an edge gateway share; the node's
(`DisclosureCommitter`) submits through its own mempool, signed by its own key, one
commitment pending at a time (a refused or dropped one is replaced at the next tick),
and only while its account is a registered validator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from medchain.app import CommitHeadArgs, Role, get_account, get_identity, latest_head
from medchain.crypto import AccountKeys, signed_tx
from medchain.node._config import ConfigError
from medchain.node._disclosure_log import SqliteDisclosureLog
from medchain.node._ledger_app import LedgerApp
from medchain.types import MedchainError, Tx, tx_id

log = logging.getLogger("medchain.node.disclosures")

DEFAULT_COMMIT_INTERVAL_S = 5.0
MAX_COMMIT_INTERVAL_S = 3_600.0


def commit_interval_s(extra: Mapping[str, Any]) -> float:
    """config.json's `disclosures.commit_interval_s`, checked; the default without."""
    section = extra.get("disclosures", {})
    value = (
        section.get("commit_interval_s", DEFAULT_COMMIT_INTERVAL_S)
        if isinstance(section, dict)
        else None
    )
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = -1.0
    if not 0 < value <= MAX_COMMIT_INTERVAL_S:
        raise ConfigError(
            "config.json: disclosures.commit_interval_s must be a number of seconds above 0 "
            f"and at most {MAX_COMMIT_INTERVAL_S:g}, e.g. 5"
        )
    return float(value)


class HeadCommitter:
    """What every committer of a disclosure log's head does alike, a node or an edge
    gateway: every `interval_s`, if the log has written entries beyond the seq the
    chain holds for its account, it sends (seq, head, api_url); a refused send is
    logged and tried again at the next tick. Subclasses say what the chain holds for
    the account (`standing`) and how a commitment is sent (`send`)."""

    def __init__(
        self,
        disclosures: SqliteDisclosureLog,
        api_url: str,
        interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
    ) -> None:
        self.disclosures = disclosures
        self.api_url = api_url
        self.interval_s = interval_s
        self.submitted = 0
        self._next_s = 0.0
        """When `tick` next tries (a monotonic clock's seconds)."""
        self._seen = 0
        """The seq the chain was last seen to hold: asked again only once the log grew."""

    async def standing(self) -> int | None:
        """The seq the chain holds for this account's log (0: none yet), or None while
        it may not commit (its role, or a commitment still pending)."""
        raise NotImplementedError

    async def send(self, args: CommitHeadArgs) -> None:
        """Send the commitment; a MedchainError if it is refused."""
        raise NotImplementedError

    async def commit_once(self) -> bool:
        """Send a commitment if one is due; whether it did."""
        seq, head = self.disclosures.durable
        if seq <= self._seen:
            return False  # nothing written since the head the chain holds
        try:
            committed = await self.standing()
            if committed is None:
                return False
            self._seen = committed
            if seq <= committed:
                return False
            await self.send(CommitHeadArgs(seq, head, self.api_url))
        except MedchainError as exc:
            log.warning("could not submit the disclosure log's head: %s", exc.message)
            return False
        self.submitted += 1
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.commit_once()

    async def tick(self, now_s: float) -> bool:
        """`commit_once` if `interval_s` passed since the last tick that tried, for a
        loop that does other work between ticks (the gateway's); whether it sent."""
        if now_s < self._next_s:
            return False
        self._next_s = now_s + self.interval_s
        return await self.commit_once()


class DisclosureCommitter(HeadCommitter):
    """A node's: signed with its own key, through its own mempool, one pending at a
    time, while its account is a validator."""

    def __init__(
        self,
        disclosures: SqliteDisclosureLog,
        app: LedgerApp,
        keys: AccountKeys,
        api_url: str,
        submit: Callable[[Tx], Awaitable[bool]],
        interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
    ) -> None:
        super().__init__(disclosures, api_url, interval_s)
        self.app = app
        self.keys = keys
        self.submit = submit
        self._pending: bytes | None = None
        """The hash of the commitment submitted and not yet committed or dropped."""

    async def standing(self) -> int | None:
        if self._pending is not None and self._pending in self.app.mempool:
            return None
        self._pending = None
        state = self.app.ledger.state
        identity = get_identity(state, self.keys.address)
        if identity is None or identity.role is not Role.VALIDATOR:
            return None
        found = latest_head(state, self.keys.address)
        return 0 if found is None else found.seq

    async def send(self, args: CommitHeadArgs) -> None:
        state = self.app.ledger.state
        nonce = self.app.mempool.next_nonce(
            self.keys.public_key, get_account(state, self.keys.address).nonce
        )
        tx = signed_tx(
            self.keys, self.app.chain_id, nonce, "disclosures.commit", args, self.app.params.min_fee
        )
        await self.submit(tx)
        self._pending = tx_id(tx)
