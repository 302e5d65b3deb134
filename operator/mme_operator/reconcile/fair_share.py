"""A fair share of the reconcile workers per namespace.

The operator has a fixed number of workers (``max_concurrent_reconciles``) for every team.
A pass may hold its worker for a long time (a source that answers slowly, or never, until
its read deadline), so one namespace with many such passes could hold them all and stall
every other namespace. A namespace may hold at most ``(workers - 1) // active`` of them
(at least one), where ``active`` counts the namespaces that held a worker lately: one
worker is always left for a namespace that has none, and the shares shrink as more
namespaces are busy. A pass over its namespace's share does not wait for a worker: it is
tried again a moment later, freeing its worker at once.

The change handlers wait for their turn before they take a worker at all
(:class:`FairTurns`): on the event loop, holding no worker and writing nothing. Tried again
through kopf instead, each refused pass wrote its retry to the object (an API write, a watch
event, kopf's handling of it): 1,000 endpoints created in one namespace made 5,600 such
refusals and 7,000 PATCHes in two minutes, most of the API server's and the operator's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

ACTIVE_WINDOW_SECONDS = 60.0
"""A namespace counts as active this long after it last held a worker."""


class NamespaceShares:
    """Thread-safe: ``slot(namespace)`` grants a worker within the namespace's share."""

    def __init__(
        self,
        workers: int,
        *,
        window_seconds: float = ACTIVE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workers = max(1, workers)
        self.window = window_seconds
        self._clock = clock
        self._held: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.on_release: Callable[[], None] | None = None
        """Called (in the releasing thread) after each release: a waiter may go now."""

    def share(self, namespace: str) -> int:
        """Workers ``namespace`` may hold now."""
        with self._lock:
            return self._share(namespace, self._clock())

    def _share(self, namespace: str, now: float) -> int:
        active = {ns for ns, at in self._last.items() if now - at <= self.window}
        active |= {ns for ns, held in self._held.items() if held}
        active.add(namespace)
        return max(1, (self.workers - 1) // len(active))

    def try_acquire(self, namespace: str) -> bool:
        """Take a worker for ``namespace`` if its share allows; never waits."""
        with self._lock:
            now = self._clock()
            held = self._held.get(namespace, 0)
            if held >= self._share(namespace, now):
                return False
            self._held[namespace] = held + 1
            self._last[namespace] = now
            return True

    def release(self, namespace: str) -> None:
        with self._lock:
            self._held[namespace] = max(0, self._held.get(namespace, 0) - 1)
            self._last[namespace] = self._clock()
        if self.on_release is not None:
            self.on_release()

    def held(self, namespace: str) -> int:
        with self._lock:
            return self._held.get(namespace, 0)

    @contextlib.contextmanager
    def slot(self, namespace: str) -> Iterator[bool]:
        """``True`` (and the worker counted until the block ends) or ``False``: over share."""
        granted = self.try_acquire(namespace)
        try:
            yield granted
        finally:
            if granted:
                self.release(namespace)


WAKE_SAFETY_SECONDS = 5.0
"""A waiting pass looks again this often even if no release woke it."""


class FairTurns:
    """Passes waiting for a worker within their namespace's share, on one event loop.

    ``async with turns.turn(namespace)`` returns once :class:`NamespaceShares` grants the
    namespace a worker, which it holds until the block ends. Waiters of each namespace go
    in arrival order; on each release every namespace with room is offered the freed
    worker, those that waited longest first, so a namespace with one pass is not queued
    behind another's thousand. Waiting costs no thread and no API call.
    """

    def __init__(self, shares: NamespaceShares) -> None:
        self.shares = shares
        self._waiting: dict[str, deque[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        shares.on_release = self._released

    def waiting(self, namespace: str) -> int:
        """Passes of ``namespace`` waiting now."""
        return len(self._waiting.get(namespace, ()))

    @contextlib.asynccontextmanager
    async def turn(self, namespace: str) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        # Behind earlier waiters of the namespace, even when a worker is free right now.
        if self._waiting.get(namespace) or not self.shares.try_acquire(namespace):
            await self._wait(namespace)
        try:
            yield
        finally:
            self.shares.release(namespace)

    async def _wait(self, namespace: str) -> None:
        queue = self._waiting.setdefault(namespace, deque())
        mine = asyncio.Event()
        queue.append(mine)
        try:
            while not (queue[0] is mine and self.shares.try_acquire(namespace)):
                mine.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(mine.wait(), WAKE_SAFETY_SECONDS)
        finally:
            queue.remove(mine)
            if not queue:
                del self._waiting[namespace]
            self._wake()  # the next of this namespace, if a worker is left for it

    def _released(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:  # a worker thread's release
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for namespace, queue in self._waiting.items():
            if queue and self.shares.held(namespace) < self.shares.share(namespace):
                queue[0].set()
