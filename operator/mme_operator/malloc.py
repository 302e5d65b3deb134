"""Capping glibc's malloc arenas for the operator process.

glibc gives each thread that allocates while another holds the lock an arena of its own,
up to 8 per CPU (of the node, not of the pod's limit). The operator's handler and upload
threads each allocate a little and keep their arena's pages: at 100 endpoints that is
about 12 MiB of resident memory for nothing, since the GIL serialises the threads anyway.
``mallopt(M_ARENA_MAX, n)`` caps it for the arenas made from then on; it must therefore
run before the threads start. Elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

log = logging.getLogger("mme_operator.malloc")

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_arenas(arenas: int, environ: Mapping[str, str] | None = None) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; True when the cap was set.

    Nothing is done for ``arenas`` 0, when ``MALLOC_ARENA_MAX`` is set (glibc read it at
    start: the operator's user chose), or when the C library has no ``mallopt``.
    """
    environ = os.environ if environ is None else environ
    if arenas <= 0 or environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, applied)
    return applied
