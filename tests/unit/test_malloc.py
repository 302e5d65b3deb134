"""The arena cap of `mme-operator run`: counted in glibc's own report of its heaps."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import textwrap

import pytest
from mme_operator.malloc import limit_arenas

GLIBC = sys.platform.startswith("linux") and "libc.so.6" in (ctypes.util.find_library("c") or "")

# Sixteen threads allocate while they all exist; glibc then reports its heaps (one per
# arena) through malloc_info. The script prints the number of heaps.
SCRIPT = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from mme_operator.malloc import limit_arenas
    cap = int(sys.argv[1])
    print("applied" if limit_arenas(cap) else "skipped")
    barrier = threading.Barrier(16)
    kept = []
    def work():
        barrier.wait()
        kept.append(bytearray(300_000))  # above obmalloc: a malloc of this thread's arena
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    path = tempfile.mktemp()
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(path).read().count("<heap nr="))
    os.unlink(path)
    """
)


def _heaps(cap: int, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cap)],
        capture_output=True,
        text=True,
        check=True,
        env=environ,
        timeout=60,
    )
    applied, heaps = done.stdout.split()
    return applied, int(heaps)


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_the_cap_holds_sixteen_threads_to_two_heaps() -> None:
    applied, heaps = _heaps(2)
    assert applied == "applied"
    assert heaps <= 2


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_without_the_cap_the_threads_spread_over_more_heaps() -> None:
    # The control: what the cap saves exists on this machine (glibc allows 8 per CPU).
    applied, heaps = _heaps(0)
    assert applied == "skipped"
    assert heaps > 2


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_an_explicit_malloc_arena_max_wins() -> None:
    applied, heaps = _heaps(2, MALLOC_ARENA_MAX="4")
    assert applied == "skipped"
    assert 2 < heaps <= 4


def test_zero_leaves_glibc_alone() -> None:
    assert limit_arenas(0, environ={}) is False
