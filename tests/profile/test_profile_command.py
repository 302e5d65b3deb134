"""`mme-operator profile` on the shipped example model, with a small grid, on the bundled Triton."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mme_operator.demo_models import demo_models_dir
from mme_operator.local.triton import TritonServer

MLP = {
    "name": "mlp",
    "backend": "python",
    "maxBatchSize": 16,
    "inputs": [{"name": "INPUT", "dataType": "TYPE_FP32", "dims": [256]}],
    "outputs": [{"name": "OUTPUT", "dataType": "TYPE_FP32", "dims": [256]}],
    "instanceGroups": [{"count": 1, "kind": "KIND_GPU"}],
}


def manifest(tmp_path: Path, *models: dict[str, Any]) -> str:
    source = (demo_models_dir() / "mlp" / "model.py").as_uri()
    doc = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "profiled"},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": "mme-models"},
            "instanceType": "ml.g5.xlarge",
            "models": [{"source": source, **m} for m in models],
        },
    }
    path = tmp_path / "mep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def profile(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "profile", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.skipif(not TritonServer.available(), reason="needs the triton extra")
def test_profile_writes_reports_and_a_paste_ready_recommendation(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = profile(
        "-f", manifest(tmp_path, MLP),
        "--instances", "1,2",
        "--delays-us", "off,1000",
        "--concurrency", "8",
        "--seconds", "0.7",
        "--warmup", "0.3",
        "--latency-budget-ms", "5000",
        "--out", str(out),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "[4/4]" in result.stderr  # progress, one line per point
    assert sorted(p.name for p in out.iterdir()) == [
        "report.csv",
        "report.json",
        "throughput-latency.png",
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["method"].startswith("bounded grid")
    assert len(report["results"]) == 4
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert {(r["instances"], r["queueDelayUs"]) for r in rows} == {
        ("1", ""),
        ("1", "1000"),
        ("2", ""),
        ("2", "1000"),
    }
    best = report["recommendation"]
    assert best["throughput_rps"] == max(r["throughput_rps"] for r in report["results"])
    # The printed patch parses as YAML and names the measured variant.
    patch = yaml.safe_load(result.stdout.split("recommended (paste into the ModelEndpoint):\n")[1])
    model = patch["spec"]["models"][0]
    assert model["name"] == "mlp"
    assert model["instanceGroups"] == [{"count": best["instances"], "kind": "KIND_GPU"}]
    assert f"{best['throughput_rps']:g} req/s" in result.stdout
    assert (out / "throughput-latency.png").read_bytes().startswith(b"\x89PNG")


def test_a_model_without_inputs_says_what_to_add(tmp_path: Path) -> None:
    bare = {k: v for k, v in MLP.items() if k != "inputs"}
    result = profile("-f", manifest(tmp_path, bare), "--out", str(tmp_path / "r"))

    assert result.returncode == 2
    assert "declares no inputs" in result.stderr
    assert "inputs: [{name:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_several_models_need_model(tmp_path: Path) -> None:
    result = profile("-f", manifest(tmp_path, MLP, {**MLP, "name": "other"}))

    assert result.returncode == 2
    assert "choose one with --model" in result.stderr
    assert "mlp, other" in result.stderr


def test_a_tritonserver_that_is_not_a_program_is_one_line(tmp_path: Path) -> None:
    result = profile("-f", manifest(tmp_path, MLP), "--tritonserver", str(tmp_path / "nope"))

    assert result.returncode == 2
    assert f"--tritonserver {tmp_path / 'nope'}: not an executable file" in result.stderr
    assert "Traceback" not in result.stderr
