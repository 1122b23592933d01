"""Checking the key holder's vitals before a page asks for them: the chart's first view
would otherwise open every bundle of the month and check every reading's signature and
profile (20 s for 100,000 readings). When the app starts, a thread of its own checks
the bundles of the last month, newest first, into the app's `CheckedBundles`; then it
follows new blocks, and when one commits a batch with a bundle of the key holder's, it
checks what is new. Its chain calls go through the chain's thread one at a time, so
pages are served between them; a page that needs a bundle being checked waits for that
bundle only, and checks the others it needs itself.

Only the key holder's own vitals are warmed: a read of another patient's vitals (a
proxy's, a shared reader's) is in that patient's accounting of disclosures, and the app
makes none that its user did not ask for."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from medchain.app import MS_PER_DAY, CommitBatchArgs
from medchain.client import MedchainClient
from medchain.gateway import CheckedBundles, warm_vitals
from medchain.types import DecodeError, MedchainError, decode
from medchain.web._worker import ChainWorker

WARM_DAYS = 30
"""Days back from now that are warmed: the chart's longest named range (a month)."""
FOLLOW_S = 1.0
"""How often the latest block is asked for, to warm bundles as they are committed."""

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


class VitalsWarmup:
    """The thread that checks the key holder's vitals ahead of their views."""

    def __init__(
        self, worker: ChainWorker[Any], client: MedchainClient, checked: CheckedBundles
    ) -> None:
        self._worker, self._client, self.checked = worker, client, checked
        self._stop = threading.Event()
        self.warmed = threading.Event()
        """Set when the first pass (the month before the app started) is done."""
        self.warm_s: float | None = None
        """How long the first pass took, once done."""
        self._thread = threading.Thread(target=self._run, name="medchain-vitals-warmup")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop, after the chain call or bundle under way (before the chain closes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def warm(self) -> int:
        """Check the bundles of the last WARM_DAYS days not checked yet; how many."""
        now = _now_ms()
        client = self._client
        return warm_vitals(
            client.keys,
            client.chain,
            client.address,
            now - WARM_DAYS * MS_PER_DAY + 1,
            now,
            self.checked,
            self._on_chain,
        )

    def _on_chain(self, call: Any) -> Any:
        if self._stop.is_set():
            raise _Stopped
        return self._worker.call(call)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            seen = self._on_chain(self._client.chain.latest_block).height
            self.warm()
            self.warm_s = time.perf_counter() - started
            self.warmed.set()
            while not self._stop.wait(FOLLOW_S):
                latest = self._on_chain(self._client.chain.latest_block)
                if latest.height > seen and self._commits_mine(latest.txs):
                    self.warm()
                seen = max(seen, latest.height)
        except _Stopped:
            pass
        except (MedchainError, OSError, RuntimeError):  # the chain went away: pages say so
            log.exception("warming the vitals stopped")
        finally:
            self.warmed.set()

    def _commits_mine(self, txs: Any) -> bool:
        """Whether a block's transactions commit a bundle of the key holder's."""
        for tx in txs:
            if tx.method != "devices.commit_batch":
                continue
            try:
                args = decode(CommitBatchArgs, tx.args)
            except DecodeError:
                continue
            if any(bundle.patient == self._client.address for bundle in args.bundles):
                return True
        return False


class _Stopped(Exception):
    """The app is stopping: the warm-up ends before its next chain call."""
