"""moto's S3 server in a process of its own, for measurements that must not share memory.

Objects uploaded to moto stay in its memory (a multipart upload briefly twice over), so a
test or benchmark that measures the peak memory of the process that uploads runs moto
elsewhere: :func:`moto_s3_process` starts ``python -m moto.server`` on a free loopback
port and yields its URL.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


@contextlib.contextmanager
def moto_s3_process(start_timeout: float = 30.0) -> Iterator[str]:
    """Run moto's server on 127.0.0.1 until the block ends; yields ``http://127.0.0.1:<port>``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
