"""`Verifier`: signature checks run in a pool of worker threads, their outcomes recorded
on the event loop.

Why threads: the checks are libsodium calls made through ctypes (pysodium, for ring
signatures) and cffi (PyNaCl, for Ed25519), and both release the GIL while libsodium
works. The Python between the calls holds it for about a tenth of a ring check (a few
microseconds per scalar multiplication of ~100 us), so the loop keeps answering while
workers verify, and the workers share the loop's caches (a ring member's hash point is
computed once). `medchain bench ring --forged` measures it.

Only the loop touches the signature cache and the bookkeeping here; a worker only runs
`run_checks` on plain data. The workers take the sources' checks in turn (a client's
transfer is not stuck behind another client's burst of forged rings), and run at a
lower CPU priority than the loop. A check asked for twice while it runs (a transaction
gossiped and proposed at once) runs once. Consensus asks for its checks `urgent`: they
go before every source's turn, even if the same check already waits in a source's
queue (it is skipped there once passed), so a proposal is not held behind a backlog
of gossip. A check that failed is remembered, so the
same forgery sent again costs nothing."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from medchain.app import SignatureCache, SignatureCheck, run_checks

CHUNK_COST = 512
"""Work units a worker takes in one go (about 30 ms): a large batch is spread over the
workers, and other requests' checks get their turn between its chunks."""
_REMEMBERED_TURNS = 4_096
"""Sources whose last turn is remembered; one forgotten counts as new (goes first)."""
FAILED_CAPACITY = 8_192
"""Failed checks remembered (by key: the same bytes fail again)."""


def default_workers() -> int:
    """One worker per core but one, which the event loop keeps for itself."""
    return max(1, (os.cpu_count() or 2) - 1)


WORKER_NICENESS = 5
"""How much lower the workers' CPU priority is than the node's (Linux `nice`): when they
and the event loop both want a core, the loop gets it first (three times the share),
so a burst of checks does not slow the node's answers."""


def _yield_to_the_loop() -> None:
    """Lower the calling worker thread's priority (on Linux a thread has its own)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, niceness)


class Verifier:
    def __init__(
        self,
        cache: SignatureCache,
        workers: int | None = None,
        *,
        chunk_cost: int = CHUNK_COST,
        failed_capacity: int = FAILED_CAPACITY,
    ) -> None:
        self.cache = cache
        self.workers = workers or default_workers()
        self.chunk_cost = chunk_cost
        self.failed_capacity = failed_capacity
        self._pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="medchain-verify", initializer=_yield_to_the_loop
        )
        self._running: dict[bytes, asyncio.Future[bool]] = {}
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._queues: dict[str, deque[list[SignatureCheck]]] = {}
        """Chunks waiting for a worker, per source."""
        self._urgent: deque[list[SignatureCheck]] = deque()
        """Chunks waiting for a worker ahead of every source's."""
        self._urgent_waits: dict[bytes, asyncio.Future[bool]] = {}
        """Urgent checks waiting or running, by key."""
        self._ready: list[tuple[int, int, str]] = []
        """Heap of the sources with chunks waiting: (turn last served, arrival, source)."""
        self._arrivals = 0
        self._last_served: dict[str, int] = {}
        """The turn each source was last served at (the latest `_REMEMBERED_TURNS`)."""
        self._turns = 0
        self._busy = 0
        self._closing = False
        self.backlog = 0
        """Work units waiting for or in the workers."""
        self.verified_units = 0
        """Work units of checks that passed, since start."""
        self.failed_units = 0
        """Work units of checks that failed, since start."""

    def outcome(self, check: SignatureCheck) -> bool | None:
        """True if `check` passed before (cached), False if it failed before, None if
        it would have to run."""
        if self.cache.seen(check.key):
            return True
        if check.key in self._failed:
            return False
        return None

    async def verify(
        self, checks: Sequence[SignatureCheck], source: str = "", *, urgent: bool = False
    ) -> list[bool]:
        """Whether each check passes, in order; runs in the workers those not known.
        A pass is in the signature cache when this returns. The workers take the
        sources' chunks in turn, so one source's backlog does not hold back another's
        checks; `urgent` ones before all of them. Cancelling the caller leaves the
        checks running: others may be waiting for them."""
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[bool]] = []
        chunk: list[SignatureCheck] = []
        chunk_cost = 0
        for check in checks:
            known = self.outcome(check)
            if known is not None:
                done: asyncio.Future[bool] = loop.create_future()
                done.set_result(known)
                waits.append(done)
                continue
            waiting = self._urgent_waits if urgent else self._running
            running = waiting.get(check.key)
            if running is None:
                running = waiting[check.key] = loop.create_future()
                chunk.append(check)
                chunk_cost += check.cost
                if chunk_cost >= self.chunk_cost:
                    self._enqueue(source, chunk, urgent)
                    chunk, chunk_cost = [], 0
            waits.append(running)
        if chunk:
            self._enqueue(source, chunk, urgent)
        return list(await asyncio.gather(*(asyncio.shield(w) for w in waits)))

    def _enqueue(self, source: str, chunk: list[SignatureCheck], urgent: bool) -> None:
        if urgent:
            self._urgent.append(chunk)
            self.backlog += sum(check.cost for check in chunk)
            self._dispatch()
            return
        queue = self._queues.get(source)
        if queue is None:
            queue = self._queues[source] = deque()
            self._line(source, self._last_served.get(source, -1))
        queue.append(chunk)
        self.backlog += sum(check.cost for check in chunk)
        self._dispatch()

    def _line(self, source: str, last_served: int) -> None:
        self._arrivals += 1
        heapq.heappush(self._ready, (last_served, self._arrivals, source))

    def _dispatch(self) -> None:
        """Hand chunks to free workers: next, the source served longest ago (one that
        just started waiting first), so each waiting source gets its turn; urgent
        chunks before them all."""
        while self._busy < self.workers and self._urgent:
            self._start(self._urgent.popleft())
        while self._busy < self.workers and self._ready:
            _, _, source = heapq.heappop(self._ready)
            queue = self._queues[source]
            chunk = queue.popleft()
            self._turns += 1
            self._last_served.pop(source, None)
            self._last_served[source] = self._turns  # kept in turn order, oldest first
            if len(self._last_served) > _REMEMBERED_TURNS:
                del self._last_served[next(iter(self._last_served))]
            if queue:
                self._line(source, self._turns)
            else:
                del self._queues[source]
            self._start(chunk)

    def _start(self, chunk: list[SignatureCheck]) -> None:
        self._busy += 1
        task = asyncio.ensure_future(self._run(chunk))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, chunk: list[SignatureCheck]) -> None:
        cost = sum(check.cost for check in chunk)
        passed_already: list[SignatureCheck] = []
        to_run: list[SignatureCheck] = []
        for check in chunk:  # one cache lookup each: this runs for every chunk
            (passed_already if self.cache.seen(check.key) else to_run).append(check)
        chunk = to_run
        try:
            loop = asyncio.get_running_loop()
            outcomes = await loop.run_in_executor(self._pool, run_checks, chunk)
        except BaseException as exc:  # closing (cancelled), or the pool is shut down
            _abandon(self._running, chunk, exc)
            _abandon(self._urgent_waits, chunk, exc)
            raise
        finally:
            self.backlog -= cost
            self._busy -= 1
            if not self._closing:
                self._dispatch()
        for check, passed in zip(chunk, outcomes, strict=True):
            if passed:
                self.cache.add(check.key)
                self.verified_units += check.cost
            else:
                self._remember_failure(check.key)
                self.failed_units += check.cost
            self._settle(check.key, passed)
        for check in passed_already:  # an urgent check ran while this one waited
            self._settle(check.key, True)

    def _settle(self, key: bytes, passed: bool) -> None:
        """Tell whoever waits for the check `key` (urgently or not) its outcome."""
        for waiting in (self._running, self._urgent_waits):
            future = waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(passed)

    def _remember_failure(self, key: bytes) -> None:
        self._failed[key] = None
        self._failed.move_to_end(key)
        if len(self._failed) > self.failed_capacity:
            self._failed.popitem(last=False)

    async def close(self) -> None:
        """Stop taking checks; wait for those running (a check is short)."""
        self._closing = True
        for queue in self._queues.values():
            for chunk in queue:
                _abandon(self._running, chunk, None)
        for chunk in self._urgent:
            _abandon(self._urgent_waits, chunk, None)
        self._urgent.clear()
        self._queues.clear()
        self._ready.clear()
        self._last_served.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=True)


def _abandon(
    running: dict[bytes, asyncio.Future[bool]],
    chunk: list[SignatureCheck],
    error: BaseException | None,
) -> None:
    """The chunk's checks will not run: fail (an error) or cancel (closing) their waiters."""
    for check in chunk:
        future = running.pop(check.key, None)
        if future is None or future.done():
            continue
        if isinstance(error, Exception):
            future.set_exception(error)
        else:
            future.cancel()
