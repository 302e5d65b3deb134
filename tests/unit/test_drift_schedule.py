"""Drift ticks: spread over the interval, one AWS read per interval, none right after a pass."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import kopf
import pytest
from mme_operator.handlers import OperatorContext, register
from mme_operator.reconcile.drift_schedule import DriftSchedule, spread_offset
from mme_operator.sagemaker.botocore_models import parse_timestamp
from mme_operator.settings import Settings

from tests.unit.test_fair_share import Clock


def test_the_first_ticks_of_objects_seen_together_are_spread_over_the_next_interval() -> None:
    schedule = DriftSchedule(10.0)
    uids = [str(uuid.UUID(int=i)) for i in range(1000)]
    delays = [schedule.first_delay(uid) for uid in uids]
    assert all(10.0 <= delay < 20.0 for delay in delays)
    # Evenly: each second of the interval holds about a tenth of them, none a herd.
    per_second = [sum(1 for d in delays if 10 + s <= d < 11 + s) for s in range(10)]
    assert min(per_second) > 60 and max(per_second) < 140, per_second
    # Stable per object (a restarted operator spreads them the same way).
    assert schedule.first_delay(uids[7]) == DriftSchedule(10.0).first_delay(uids[7])
    assert spread_offset(uids[7], 10.0) == pytest.approx(delays[7] - 10.0)


def test_a_tick_before_any_pass_of_this_process_reads_nothing() -> None:
    # The resume (or create) pass kopf runs for every object reads all a check would.
    schedule = DriftSchedule(10.0, clock=Clock())
    assert not schedule.due("a")


def test_a_tick_right_after_a_pass_reuses_its_observation() -> None:
    clock = Clock()
    schedule = DriftSchedule(10.0, clock=clock)
    schedule.observed("a")  # the resume pass, at 0
    clock.now = 4.9
    assert not schedule.due("a")
    clock.now = 5.0
    assert schedule.due("a")


def test_in_steady_state_every_tick_reads_once() -> None:
    # Sharp ticks every 10 s; each check is recorded after it waited for a worker.
    clock = Clock()
    schedule = DriftSchedule(10.0, clock=clock)
    schedule.observed("a")
    reads = 0
    for tick in range(1, 31):
        clock.now = tick * 10.0
        if schedule.due("a"):
            reads += 1
            clock.now += 3.0  # queued behind other checks
            schedule.observed("a")
    assert reads == 30


def test_a_change_between_ticks_spares_at_most_one_read() -> None:
    clock = Clock()
    schedule = DriftSchedule(10.0, clock=clock)
    schedule.observed("a")
    clock.now = 18.0
    schedule.observed("a")  # an update pass
    clock.now = 20.0
    assert not schedule.due("a")  # 2 s after the pass
    clock.now = 30.0
    assert schedule.due("a")  # never more than an interval and a half without a read


def test_a_deleted_object_is_forgotten() -> None:
    schedule = DriftSchedule(10.0, clock=Clock())
    schedule.observed("a")
    schedule.observed("b")
    schedule.forget("a")
    schedule.forget("gone-before")
    assert len(schedule) == 1


def test_timestamps_parse_as_botocore_parses_them() -> None:
    import botocore.utils

    for value in (
        "2026-12-02T14:44:33.000Z",
        "2026-12-02T14:44:33.123456+00:00",
        "2026-12-02T14:44:33+02:00",
        "Wed, 02 Dec 2026 14:44:33 GMT",
        1764686673.5,
    ):
        assert parse_timestamp(value) == botocore.utils.parse_timestamp(value), value
    assert parse_timestamp("2026-12-02T14:44:33.000Z").utcoffset().total_seconds() == 0


class Reached(Exception):
    """The drift check went on to read AWS (its clients were asked for)."""


def drift_timer(context: OperatorContext) -> Any:
    registry = kopf.OperatorRegistry()
    register(registry, context)
    (timer,) = [h for h in registry._spawning.get_all_handlers() if "drift_timer" in h.id]
    return timer.fn


async def test_no_drift_check_reads_while_a_pass_of_the_endpoint_runs() -> None:
    # A shared endpoint's first passes over thousands of Models outlast an interval: a check
    # then would list every archive each interval, while the pass reads them itself.
    def clients(region: str, settings: Settings) -> Any:
        raise Reached(region)

    context = OperatorContext(Settings(), make=clients)
    tick = drift_timer(context)
    body = kopf.Body(
        {
            "metadata": {"uid": "u-1", "name": "e", "namespace": "team-a"},
            "spec": {"region": "us-east-1"},
            "status": {"phase": "Ready"},
        }
    )
    context.schedule.observed("u-1")
    context.schedule.clock = lambda: time.monotonic() + 3600  # an interval is long past
    kwargs = {"body": body, "patch": kopf.Patch(), "logger": logging.getLogger("t")}

    with context.passing("u-1"):
        assert context.in_pass("u-1")
        await tick(archive_locations={}, **kwargs)  # skipped: nothing read

    assert not context.in_pass("u-1")
    with pytest.raises(Reached):
        await tick(archive_locations={}, **kwargs)  # no pass: the check reads AWS
    with context.lock("u-1"), pytest.raises(Reached):
        # A cache signals read holds the lock too, but reads no archive: the check reads.
        await tick(archive_locations={}, **kwargs)
