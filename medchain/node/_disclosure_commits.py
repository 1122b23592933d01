"""The node's commitments of its disclosure log's head: every `interval_s`, if the log
has written entries beyond what the chain holds for this node, it submits
`disclosures.commit` (seq, head, api_url) signed by its own key, through its own
mempool. One commitment is pending at a time; a refused or dropped one is replaced at
the next tick. Only a node whose account is a registered validator commits."""

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


class DisclosureCommitter:
    def __init__(
        self,
        disclosures: SqliteDisclosureLog,
        app: LedgerApp,
        keys: AccountKeys,
        api_url: str,
        submit: Callable[[Tx], Awaitable[bool]],
        interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
    ) -> None:
        self.disclosures = disclosures
        self.app = app
        self.keys = keys
        self.api_url = api_url
        self.submit = submit
        self.interval_s = interval_s
        self._pending: bytes | None = None
        """The hash of the commitment submitted and not yet committed or dropped."""
        self.submitted = 0

    def committed_seq(self) -> int:
        found = latest_head(self.app.ledger.state, self.keys.address)
        return 0 if found is None else found.seq

    def due(self) -> tuple[int, bytes] | None:
        """(seq, head) to commit now, or None: nothing new, one pending, or this node's
        account is not a validator."""
        if self._pending is not None and self._pending in self.app.mempool:
            return None
        self._pending = None
        identity = get_identity(self.app.ledger.state, self.keys.address)
        if identity is None or identity.role is not Role.VALIDATOR:
            return None
        seq, head = self.disclosures.durable
        return (seq, head) if seq > self.committed_seq() else None

    async def commit_once(self) -> bool:
        """Submit a commitment if one is due; whether it did."""
        due = self.due()
        if due is None:
            return False
        state = self.app.ledger.state
        nonce = self.app.mempool.next_nonce(
            self.keys.public_key, get_account(state, self.keys.address).nonce
        )
        args = CommitHeadArgs(due[0], due[1], self.api_url)
        tx = signed_tx(
            self.keys, self.app.chain_id, nonce, "disclosures.commit", args, self.app.params.min_fee
        )
        try:
            await self.submit(tx)
        except MedchainError as exc:
            log.warning("could not submit the disclosure log's head: %s", exc.message)
            return False
        self._pending = tx_id(tx)
        self.submitted += 1
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.commit_once()
