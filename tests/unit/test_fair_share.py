"""Each namespace gets a fair share of the reconcile workers; one is always left for a
namespace that holds none."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from mme_operator.reconcile.fair_share import FairTurns, NamespaceShares


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_busy_namespace_leaves_a_worker_for_another() -> None:
    shares = NamespaceShares(8, clock=Clock())
    granted = [shares.try_acquire("team-a") for _ in range(8)]
    assert granted == [True] * 7 + [False]
    assert shares.try_acquire("team-b")
    # Now both are active: each may hold (8 - 1) // 2 = 3; team-a holds 7 and gets no more.
    assert not shares.try_acquire("team-a")
    assert shares.share("team-b") == 3


def test_shares_shrink_with_the_number_of_active_namespaces() -> None:
    clock = Clock()
    shares = NamespaceShares(8, clock=clock)
    for ns in ("a", "b", "c"):
        assert shares.try_acquire(ns)
    assert shares.share("d") == 1  # 7 // 4
    assert shares.try_acquire("d")
    for ns in ("a", "b", "c", "d"):
        shares.release(ns)
    # A namespace idle for longer than the window no longer counts.
    clock.now += 61
    assert shares.share("a") == 7


def test_release_gives_the_worker_back_and_slot_counts_only_what_it_got() -> None:
    shares = NamespaceShares(2, clock=Clock())
    with shares.slot("x") as first:
        assert first and shares.held("x") == 1
        with shares.slot("x") as second:
            assert not second  # (2 - 1) // 1 = 1
        assert shares.held("x") == 1
    assert shares.held("x") == 0


def test_a_single_worker_is_never_refused_to_a_namespace_that_holds_none() -> None:
    shares = NamespaceShares(1, clock=Clock())
    assert shares.try_acquire("a")
    assert shares.try_acquire("b")  # at least one each, whatever the count


def test_it_is_safe_across_threads() -> None:
    shares = NamespaceShares(64)
    results: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        got = shares.try_acquire("team")
        with lock:
            results.append(got)

    threads = [threading.Thread(target=take) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 63 == shares.held("team")


# -- waiting for a turn on the event loop (the change handlers) --------------------------


async def test_passes_over_the_share_wait_for_a_turn_and_all_get_one() -> None:
    turns = FairTurns(NamespaceShares(8, clock=Clock()))
    inside, most = 0, 0

    async def one_pass() -> None:
        nonlocal inside, most
        async with turns.turn("team"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    started = time.monotonic()
    await asyncio.gather(*(one_pass() for _ in range(50)))
    assert most == 7  # the share: (8 - 1) // 1
    # Woken by each release, not by the safety timeout: 50 / 7 rounds of 10 ms.
    assert time.monotonic() - started < 1.0
    assert turns.waiting("team") == 0 and turns.shares.held("team") == 0


async def test_a_namespace_arriving_behind_another_s_thousand_goes_first() -> None:
    turns = FairTurns(NamespaceShares(8, clock=Clock()))
    order: list[str] = []
    gate = asyncio.Event()

    async def one_pass(namespace: str) -> None:
        async with turns.turn(namespace):
            await gate.wait()
            order.append(namespace)

    busy = [asyncio.create_task(one_pass("big")) for _ in range(1000)]
    await asyncio.sleep(0)
    late = asyncio.create_task(one_pass("small"))
    await asyncio.sleep(0)
    assert turns.waiting("big") == 1000 - 7 and turns.waiting("small") == 0  # in at once
    gate.set()
    await asyncio.gather(late, *busy)
    assert order.index("small") < 10


async def test_a_release_in_a_worker_thread_wakes_a_waiter_at_once() -> None:
    shares = NamespaceShares(2, clock=Clock())
    turns = FairTurns(shares)
    assert shares.try_acquire("team")  # a drift tick's pass, in a worker thread
    waiter = asyncio.create_task(_enter(turns, "team"))
    await asyncio.sleep(0.05)
    assert not waiter.done() and turns.waiting("team") == 1
    started = time.monotonic()
    await asyncio.to_thread(shares.release, "team")
    await asyncio.wait_for(waiter, 1.0)
    assert time.monotonic() - started < 0.5  # not the safety timeout's 5 s


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    shares = NamespaceShares(2, clock=Clock())
    turns = FairTurns(shares)
    assert shares.try_acquire("team")
    waiter = asyncio.create_task(_enter(turns, "team"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    assert turns.waiting("team") == 0
    shares.release("team")
    await asyncio.wait_for(_enter(turns, "team"), 1.0)


async def _enter(turns: FairTurns, namespace: str) -> None:
    async with turns.turn(namespace):
        pass
