"""``mme-operator run`` binds its metrics, liveness and readiness servers where told.

The chart's ``metrics.listenAddress`` / ``health.listenAddress`` become ``MME_*_ADDRESS``;
here the operator binds all three to the IPv6 loopback and answers there, not on IPv4.
No API server is needed: liveness is kopf's (the event loop runs), readiness says 503.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.faults.harness import CREDENTIALS, free_port, wait_until
from tests.faults.test_run import UNREACHABLE


def status(url: str) -> int:
    """The HTTP status at URL; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def run_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE % free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MME_")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return {**env, **CREDENTIALS, "KUBECONFIG": str(kubeconfig), **settings}


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_every_server_binds_the_configured_address(tmp_path: Path) -> None:
    metrics, health, ready = free_port(), free_port(), free_port()
    env = run_env(
        tmp_path,
        MME_METRICS_PORT=str(metrics),
        MME_HEALTH_PORT=str(health),
        MME_READINESS_PORT=str(ready),
        MME_METRICS_ADDRESS="::1",
        MME_HEALTH_ADDRESS="::1",
        MME_READINESS_ADDRESS="::1",
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mme_operator.cli", "run", "-A", "--standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: status(f"http://[::1]:{health}/healthz") == 200,
            "liveness on [::1]",
            timeout=30,
        )
        wait_until(
            lambda: status(f"http://[::1]:{ready}/readyz") == 503, "readiness on [::1]", timeout=20
        )
        assert status(f"http://[::1]:{metrics}/metrics") == 200
        # Nothing listens on the IPv4 addresses (the default, 0.0.0.0, would answer here).
        for port in (metrics, health, ready):
            assert status(f"http://127.0.0.1:{port}/") == 0
    finally:
        process.terminate()
        process.wait(20)
    assert "Traceback" not in log.read_text()


def test_an_address_that_is_not_an_ip_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "run"],
        env=run_env(tmp_path, MME_HEALTH_ADDRESS="all-interfaces"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "MME_HEALTH_ADDRESS='all-interfaces'" in line and "IP address" in line, line
