"""`benchmarks/serving.py` on the bundled tritonserver: four configs from one run, as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mme_operator.local.triton import TritonServer

pytestmark = pytest.mark.skipif(not TritonServer.available(), reason="needs the triton extra")

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "serving.py"


def test_the_benchmark_prints_four_configs_and_batching_pays_off() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--json",
            "--seconds",
            "1",
            "--warmup",
            "0.5",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "CPU" in report["device"]
    assert list(report["configs"]) == ["plain", "batching", "instances", "both"]
    for figures in report["configs"].values():
        assert set(figures) == {"throughput_rps", "p50_ms", "p95_ms", "p99_ms"}
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
        assert figures["throughput_rps"] > 0
    # The full claim (>= 3x, -60% p50) is for a quiet machine; a loaded CI box still
    # shows batching clearly ahead of plain.
    configs = report["configs"]
    assert configs["both"]["throughput_rps"] > 1.5 * configs["plain"]["throughput_rps"]
    assert configs["both"]["p50_ms"] < configs["plain"]["p50_ms"]
