"""`mme-operator size`: candidates cheapest first, the recommendation, and why nothing fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

ONNX = {"platform": "onnxruntime_onnx", "maxBatchSize": 8}


def manifest(tmp_path: Path, models: list[dict[str, Any]], **spec: Any) -> str:
    doc = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "sized", "namespace": "ml"},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": "mme-models"},
            "instanceType": "ml.g5.xlarge",
            "models": models,
            **spec,
        },
    }
    path = tmp_path / "mep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def weights(tmp_path: Path, name: str, size: int) -> str:
    """A sparse file of ``size`` bytes: sizing reads its size, never its bytes."""
    path = tmp_path / name / "model.onnx"
    path.parent.mkdir()
    with path.open("wb") as handle:
        handle.truncate(size)
    return path.as_uri()


def size(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "size", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_models_needing_30_gib_fit_no_single_gpu_type_and_it_says_why(tmp_path: Path) -> None:
    # Two 5 GiB ONNX models with 2 instances each: 2 x (5120 x 2 x 1.5 + 2 x 256) MiB ~ 31 GiB.
    models = [
        {"name": n, "source": weights(tmp_path, n, 5 * 1024**3), **ONNX,
         "instanceGroups": [{"count": 2, "kind": "KIND_GPU"}]}
        for n in ("encoder", "reranker")
    ]  # fmt: skip
    file = manifest(tmp_path, models)

    table = size("-f", file)
    as_json = size("-f", file, "--output", "json")

    assert table.returncode == 1, table.stderr
    assert "recommended: none: no single-GPU MME type fits" in table.stdout
    assert "31744 MiB" in table.stdout
    assert "24576 MiB" in table.stdout  # the largest MME GPU (A10G)
    assert "split the models" in table.stdout
    (result,) = json.loads(as_json.stdout)
    assert result["name"] == "ml/sized"
    assert result["recommended"] is None
    assert result["gpuMemoryRequiredMiB"] == 31744
    assert not any(c["fits"] for c in result["candidates"])
    assert {m["basis"] for m in result["models"]} == {"estimate"}


def test_a_small_spec_gets_the_cheapest_fitting_type_with_its_cost(tmp_path: Path) -> None:
    models = [{"name": "small", "source": weights(tmp_path, "small", 100 * 1024**2), **ONNX}]

    result = size("-f", manifest(tmp_path, models), "--output", "json")

    assert result.returncode == 0, result.stderr
    (sized,) = json.loads(result.stdout)
    assert sized["recommended"] == "ml.g4dn.xlarge"
    assert sized["gpuMemoryRequiredMiB"] == 100 * 3 // 2 + 256
    first_fit = next(c for c in sized["candidates"] if c["fits"])
    assert first_fit == {
        "instanceType": "ml.g4dn.xlarge",
        "gpu": "NVIDIA T4",
        "gpuMemoryRequiredMiB": 406,
        "gpuMemoryAvailableMiB": int(16384 * 0.9),
        "fits": True,
        "costPerHour": 0.7364,
        "costPerMonth": round(0.7364 * 730, 2),
    }
    prices = [c["costPerHour"] for c in sized["candidates"] if c["costPerHour"] is not None]
    assert prices == sorted(prices)
    text = size("-f", manifest(tmp_path, models)).stdout
    assert (
        "recommended: ml.g4dn.xlarge: cheapest type that fits: ml.g4dn.xlarge at $0.7364/h" in text
    )


def test_an_endpoint_is_sized_with_the_models_that_attach_to_it(tmp_path: Path) -> None:
    """A shared endpoint with no inline model and two teams' Models of 9000 MiB: one
    ml.g4dn.xlarge (14745 MiB usable) holds one of them, not both; a Model of a namespace the
    endpoint does not admit is not counted."""
    endpoint = yaml.safe_load(Path(manifest(tmp_path, [])).read_text())
    endpoint["spec"].pop("instanceType")
    endpoint["spec"].update(sizing={}, attach={"from": "Same"})

    def attached(namespace: str, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "mme-operator.io/v1alpha1",
            "kind": "Model",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "endpointRef": {"name": "sized", "namespace": "ml"},
                "source": "s3://training/model.onnx",
                "gpuMemoryMiB": 9000,
                **ONNX,
            },
        }

    path = tmp_path / "shared.yaml"
    models = [attached("ml", "bert"), attached("ml", "gpt"), attached("team-x", "other")]
    path.write_text(yaml.safe_dump_all([endpoint, *models]))

    result = size("-f", str(path), "--output", "json")

    assert result.returncode == 0, result.stderr
    (sized,) = json.loads(result.stdout)
    assert [m["name"] for m in sized["models"]] == ["ml/bert", "ml/gpt"]
    assert sized["gpuMemoryRequiredMiB"] == 18000
    assert sized["recommended"] == "ml.g5.xlarge"

    # All namespaces admitted: team-x's Model counts too, and no single-GPU type holds 27000.
    endpoint["spec"]["attach"] = {"from": "All"}
    path.write_text(yaml.safe_dump_all([endpoint, *models]))
    result = size("-f", str(path), "--output", "json")
    (sized,) = json.loads(result.stdout)
    assert sized["gpuMemoryRequiredMiB"] == 27000 and sized["recommended"] is None
    assert result.returncode == 1


@pytest.fixture
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_s3_weights_are_sized_from_content_length(tmp_path: Path, s3_url: str) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="weights")
    s3.put_object(Bucket="weights", Key="bert/model.onnx", Body=b"\0" * (2 * 1024**2))
    models = [{"name": "bert", "source": "s3://weights/bert/model.onnx", **ONNX}]

    result = size("-f", manifest(tmp_path, models), "--output", "json",
                  MME_AWS_ENDPOINT_URL=s3_url, **creds)  # fmt: skip

    assert result.returncode == 0, result.stderr
    (sized,) = json.loads(result.stdout)
    assert sized["models"] == [
        {"name": "bert", "gpuInstances": 1, "gpuMemoryMiB": 2 * 3 // 2 + 256, "basis": "estimate"}
    ]


def test_expected_load_and_a_profile_give_the_instance_count(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps(
            {
                "model": "small",
                "server": "a GPU tritonserver",
                "results": [{"instances": 1, "gpuMemoryMiB": 900.0}],
                "recommendation": {"throughput_rps": 400.0, "p99_ms": 20.0},
            }
        )
    )
    models = [
        {"name": "small", "source": weights(tmp_path, "small", 1024**2), **ONNX,
         "expectedRequestsPerSecond": 1000}
    ]  # fmt: skip

    result = size("-f", manifest(tmp_path, models), "--output", "json", "--profile", str(report))

    assert result.returncode == 0, result.stderr
    (sized,) = json.loads(result.stdout)
    assert sized["instanceCountFromLoad"] == 3  # 1000 / 400 = 2.5 instances
    assert sized["models"][0] == {
        "name": "small", "gpuInstances": 1, "gpuMemoryMiB": 900, "basis": "measured"
    }  # fmt: skip
    cheapest = sized["candidates"][0]
    assert cheapest["costPerHour"] == round(3 * 0.102, 4)  # three instances priced


def test_a_broken_profile_report_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text("{}")
    models = [{"name": "small", "source": weights(tmp_path, "small", 1024), **ONNX}]

    result = size("-f", manifest(tmp_path, models), "--profile", str(bad))

    assert result.returncode == 2
    assert "not a profile report.json" in result.stderr
    assert "Traceback" not in result.stderr
