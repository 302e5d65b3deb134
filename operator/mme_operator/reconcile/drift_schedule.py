"""When each ModelEndpoint's drift check reads AWS: once per interval, spread, never twice.

kopf runs one timer per object. Left to itself, every object seen at the same moment (the
initial listing after a restart: all of them) ticks at the same moment one interval later,
right after the resume pass of each has just read the same endpoint and listing. This
module decides, without I/O:

* the first tick of each object: one interval (kopf's idle wait) plus the object's own
  offset within the next interval, stable per uid, so that the ticks of N objects are
  spread evenly over the interval instead of arriving as one herd;
* whether a tick reads AWS: not when a pass (resume, create, update, a drift check)
  observed the endpoint less than half an interval before; that observation is reused.
  Nor before any pass of this process has observed it: kopf runs a resume (or create,
  or update) pass for every object it finds, and that pass reads everything a drift
  check would. A restart then reads each endpoint once (its resume pass), however long
  the resume passes of all take, and in steady state each timer tick (kopf's sharp timer:
  one per interval) reads it once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A tick reads AWS when the last observation is at least this share of an interval old.
# Half, not all of it: a tick comes one interval after the previous tick started, and
# that tick's observation was recorded a little later (after its wait for a worker).
REUSE_SHARE = 0.5


def spread_offset(uid: str, interval: float) -> float:
    """The object's place within an interval, in [0, interval): stable, evenly spread."""
    digest = hashlib.sha256(uid.encode()).digest()
    return interval * int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class DriftSchedule:
    """The last time each object's endpoint was observed, and what a tick does with it."""

    interval: float
    clock: Callable[[], float] = time.monotonic
    _observed: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first_delay(self, uid: str) -> float:
        """Seconds from the object's first sighting to its first tick."""
        return self.interval + spread_offset(uid, self.interval)

    def observed(self, uid: str) -> None:
        """A pass or a drift check has just read this object's endpoint and listing."""
        with self._lock:
            self._observed[uid] = self.clock()

    def due(self, uid: str) -> bool:
        """Whether a tick now must read AWS (False: a recent observation stands for it)."""
        with self._lock:
            last = self._observed.get(uid)
        return last is not None and self.clock() - last >= self.interval * REUSE_SHARE

    def forget(self, uid: str) -> None:
        """The object is gone."""
        with self._lock:
            self._observed.pop(uid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._observed)
