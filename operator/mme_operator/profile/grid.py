"""The grid a profile sweeps and its variants (no heavy imports: the CLI reads the defaults)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ProfileError(Exception):
    """The profile cannot go on; the message says what to change."""


@dataclass(frozen=True)
class Variant:
    """One serving configuration: copies of the model and the batcher's queue delay."""

    instances: int
    queue_delay_us: int | None
    """None: no dynamic batching."""

    @property
    def label(self) -> str:
        batching = "off" if self.queue_delay_us is None else f"{self.queue_delay_us}us"
        return f"instances={self.instances} batching={batching}"

    @property
    def slug(self) -> str:
        batching = "nb" if self.queue_delay_us is None else f"d{self.queue_delay_us}"
        return f"i{self.instances}-{batching}"


DEFAULT_INSTANCES = (1, 2)
DEFAULT_DELAYS_US: tuple[int | None, ...] = (None, 500, 2000)
DEFAULT_CONCURRENCY = (1, 4, 16)


@dataclass(frozen=True)
class Grid:
    """What the sweep covers."""

    instances: Sequence[int] = DEFAULT_INSTANCES
    delays_us: Sequence[int | None] = DEFAULT_DELAYS_US
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY
    warmup_s: float = 1.0
    duration_s: float = 3.0

    def variants(self, batching: bool) -> list[Variant]:
        delays = self.delays_us if batching else [None]
        return [Variant(i, d) for i in self.instances for d in dict.fromkeys(delays)]

    def seconds(self, batching: bool) -> float:
        points = len(self.variants(batching)) * len(self.concurrency)
        return points * (self.warmup_s + self.duration_s)
