"""The Triton a profile runs against: a URL, a ``tritonserver`` binary, or the bundled CPU one."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mme_operator.extras import install_command
from mme_operator.profile.grid import ProfileError

BLAS_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""One BLAS thread per model copy, so that model instances are the unit of parallelism
(several instances each spawning a thread per core would fight over the cores)."""


@dataclass(frozen=True)
class Target:
    """A running Triton: its HTTP URL, whether it has no GPU, and what it is (for reports)."""

    url: str
    cpu_only: bool
    description: str
    metrics_url: str | None = None
    """Triton's Prometheus metrics, where GPU memory is read (a server this command started)."""


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v2/health/live", timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _binary(path: str, startup_timeout: float) -> Iterator[Target]:
    binary = Path(path)
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise ProfileError(f"--tritonserver {path}: not an executable file")
    with tempfile.TemporaryDirectory(prefix="mme-profile-triton-") as scratch:
        repository = Path(scratch) / "models"
        repository.mkdir()
        port, metrics_port = _free_port(), _free_port()
        # A release tree keeps its backends beside bin/ (/opt/tritonserver/backends).
        backends = binary.resolve().parent.parent / "backends"
        backend_args = [f"--backend-directory={backends}"] if backends.is_dir() else []
        log_path = Path(scratch) / "tritonserver.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(binary),
                    f"--model-repository={repository}",
                    "--model-control-mode=explicit",
                    "--http-address=127.0.0.1",
                    f"--http-port={port}",
                    "--allow-grpc=false",
                    f"--metrics-port={metrics_port}",
                    "--strict-readiness=false",
                    *backend_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **BLAS_THREADS},
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout
            while not _ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise ProfileError(f"{path} did not start:\n{tail}")
                time.sleep(0.2)
            yield Target(
                url,
                cpu_only=not _has_gpu(),
                description=f"tritonserver {path}",
                metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _has_gpu() -> bool:
    return Path("/dev/nvidia0").exists()


@contextlib.contextmanager
def _bundled(startup_timeout: float) -> Iterator[Target]:
    from mme_operator.local.triton import TritonServer, python_backend_problem

    if not TritonServer.available():
        raise ProfileError(
            "no Triton to profile against: pass --url of a running tritonserver "
            "(started with --model-control-mode=explicit), --tritonserver PATH, or "
            f"{install_command('triton')} for the bundled CPU one"
        )
    problem = python_backend_problem()
    if problem is not None:
        raise ProfileError(problem)
    saved = {k: os.environ.get(k) for k in BLAS_THREADS}
    # The server inherits this process's environment when it starts.
    os.environ.update({k: os.environ.get(k) or v for k, v in BLAS_THREADS.items()})
    try:
        server = TritonServer(startup_timeout=startup_timeout).start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield Target(server.url, cpu_only=True, description="bundled CPU tritonserver")
    finally:
        server.stop()


@contextlib.contextmanager
def triton_target(
    url: str | None = None, binary: str | None = None, startup_timeout: float = 60.0
) -> Iterator[Target]:
    """The Triton at ``url``, or one started from ``binary``, or the bundled CPU one."""
    if url is not None:
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        if not _ready(url):
            raise ProfileError(f"no live Triton at {url} (GET /v2/health/live failed)")
        yield Target(url, cpu_only=False, description=f"Triton at {url}")
    elif binary is not None:
        with _binary(binary, startup_timeout) as target:
            yield target
    else:
        with _bundled(startup_timeout) as target:
            yield target
