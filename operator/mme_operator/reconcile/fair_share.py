"""A fair share of the reconcile workers per namespace.

The operator has a fixed number of workers (``max_concurrent_reconciles``) for every team.
A pass may hold its worker for a long time (a source that answers slowly, or never, until
its read deadline), so one namespace with many such passes could hold them all and stall
every other namespace. A namespace may hold at most ``(workers - 1) // active`` of them
(at least one), where ``active`` counts the namespaces that held a worker lately: one
worker is always left for a namespace that has none, and the shares shrink as more
namespaces are busy. A pass over its namespace's share does not wait for a worker: it is
tried again a moment later, freeing its worker at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

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
