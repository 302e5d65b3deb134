"""Each namespace gets a fair share of the reconcile workers; one is always left for a
namespace that holds none."""

from __future__ import annotations

import threading

from mme_operator.reconcile.fair_share import NamespaceShares


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
