"""``mme-operator run`` without an API server it can use: fail fast, or say it is not ready.

Liveness stays kopf's (the event loop runs); readiness is whether the API server answers
the operator; neither probe writes a log line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.faults.harness import CREDENTIALS, free_port, wait_until

pytestmark = [pytest.mark.faults]

UNREACHABLE = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def run_env(kubeconfig: Path, health: int, ready: int) -> dict[str, str]:
    env = {**os.environ, **CREDENTIALS, "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env.update(MME_METRICS_PORT="0", MME_HEALTH_PORT=str(health), MME_READINESS_PORT=str(ready))
    return env


def test_no_configuration_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = run_env(tmp_path / "missing-kubeconfig", 0, 0)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert time.monotonic() - started < 15
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Kubernetes configuration" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def run_operator(kubeconfig: Path, log: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    health, ready = free_port(), free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mme_operator.cli", "run", "-A", "--standalone"],
            env=run_env(kubeconfig, health, ready),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, health, ready


def test_readiness_says_whether_the_api_server_answers(tmp_path: Path, kubeconfig: Path) -> None:
    dead = tmp_path / "unreachable"
    dead.write_text(UNREACHABLE % free_port())
    process, health, ready = run_operator(dead, tmp_path / "dead.log")
    try:
        wait_until(lambda: probe(health, "/healthz")[0] == 200, "liveness", timeout=20)
        _status, reason = wait_until(
            lambda: (
                (found := probe(ready, "/readyz"))[0] == 503 and "127.0.0.1" in found[1] and found
            ),
            "readiness 503 naming the server",
            timeout=20,
        )
        assert len(reason.strip().splitlines()) == 1
        for _ in range(5):
            assert probe(health, "/healthz")[0] == 200  # alive: kopf's meaning, unchanged
            assert probe(ready, "/readyz")[0] == 503
    finally:
        process.terminate()
        process.wait(20)
    log = (tmp_path / "dead.log").read_text()
    assert "aiohttp.access" not in log and "GET /healthz" not in log and "GET /readyz" not in log
    assert log.count("API server unreachable") == 1

    process, health, ready = run_operator(kubeconfig, tmp_path / "live.log")
    try:
        wait_until(lambda: probe(ready, "/readyz")[0] == 200, "readiness 200", timeout=30)
    finally:
        process.terminate()
        process.wait(20)
