"""A TCP server on 127.0.0.1 that accepts connections and never sends a byte.

It stands for a model host that hangs (or a tenant's source aimed at a port that stalls):
tests and ``benchmarks/tarpit.py`` use it to show deadlines, address checks and the
namespace fair share at work. ``accepted`` counts the connections it took.
"""

from __future__ import annotations

import socket
import threading


class Tarpit:
    """Listens on 127.0.0.1 (a free port) until :meth:`close`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()
