"""Each instance of a local MME keeps an LRU of loaded models bounded by its instance type's
memory, and every invocation publishes MME's metrics to the local CloudWatch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.local.conftest import ROLE, TRITON_IMAGE, Stack, model_archive, unique

# 16 GPU copies x (a few bytes x 1.5 + 256 MiB) = 4,097 MiB per model: a T4 (16 GiB)
# holds 3 of 5, an A10G (24 GiB) all 5.
BIG_CONFIG = """\
platform: "onnxruntime_onnx"
max_batch_size: 8
instance_group [{ kind: KIND_GPU count: 16 }]
"""
MODELS = [f"m{i}.tar.gz" for i in range(5)]


def big_archive() -> bytes:
    return model_archive({"m/config.pbtxt": BIG_CONFIG, "m/1/model.onnx": b"\x08\x07onnx"})


def endpoint_of(
    stack: Stack,
    instance_type: str,
    count: int = 1,
    cache: str | None = None,
    environment: dict[str, str] | None = None,
    archive: bytes | None = None,
) -> str:
    model = unique("model")
    container: dict[str, Any] = {
        "Image": TRITON_IMAGE,
        "ModelDataUrl": f"s3://{stack.bucket}/mme/",
        "Mode": "MultiModel",
    }
    if cache is not None:
        container["MultiModelConfig"] = {"ModelCacheSetting": cache}
    if environment is not None:
        container["Environment"] = environment
    stack.sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    config = unique("config")
    stack.sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
            }
        ],
    )
    for key in MODELS:
        stack.upload(key, archive or big_archive())
    return stack.endpoint(config)


def replay(stack: Stack, endpoint: str, rounds: int, models: int = len(MODELS)) -> None:
    """The first ``models`` models in turn, ``rounds`` times: the hot set is all of them."""
    runtime = stack.aws.client("sagemaker-runtime")
    for _ in range(rounds):
        for key in MODELS[:models]:
            runtime.invoke_endpoint(EndpointName=endpoint, TargetModel=key, Body=b"{}")


def window(stack: Stack, endpoint: str) -> dict[str, float]:
    """Sums and sample counts of the endpoint's metrics, as the operator asks for them."""
    cloudwatch = stack.aws.client("cloudwatch")
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    queries = [
        ("hits", "AWS/SageMaker", "ModelCacheHit", "Sum"),
        ("requests", "AWS/SageMaker", "ModelCacheHit", "SampleCount"),
        ("unloads", "AWS/SageMaker", "ModelUnloadingTime", "SampleCount"),
        ("waits", "AWS/SageMaker", "ModelLoadingWaitTime", "SampleCount"),
        ("loaded", "AWS/SageMaker", "LoadedModelCount", "Maximum"),
        ("memory", "/aws/sagemaker/Endpoints", "GPUMemoryUtilization", "Maximum"),
        ("gpu", "/aws/sagemaker/Endpoints", "GPUUtilization", "SampleCount"),
    ]
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": stat,
                },
            }
            for query_id, ns, name, stat in queries
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
    )
    figures: dict[str, float] = {}
    for result in answer["MetricDataResults"]:
        values = result["Values"]
        combine = max if result["Id"] in ("loaded", "memory") else sum
        figures[result["Id"]] = float(combine(values)) if values else 0.0
    return figures


def test_a_hot_set_larger_than_the_gpu_thrashes(stack: Stack) -> None:
    endpoint = endpoint_of(stack, "ml.g4dn.xlarge")

    replay(stack, endpoint, rounds=4)

    # LRU over a cycle longer than the cache: every request misses and pushes one out.
    assert stack.aws.loaded_models(endpoint) == MODELS[2:]
    figures = window(stack, endpoint)
    assert figures["requests"] == 20
    assert figures["hits"] == 0
    assert figures["waits"] == 20
    assert figures["unloads"] == 17
    assert figures["loaded"] == 3
    assert 70 < figures["memory"] <= 100  # 3 x 4,097 MiB of 16,384
    assert figures["gpu"] == 20


def test_the_same_trace_stays_loaded_on_a_larger_gpu(stack: Stack) -> None:
    endpoint = endpoint_of(stack, "ml.g5.xlarge")

    replay(stack, endpoint, rounds=4)

    assert stack.aws.loaded_models(endpoint) == MODELS
    figures = window(stack, endpoint)
    assert (figures["requests"], figures["hits"], figures["unloads"]) == (20, 15, 0)


def test_each_instance_has_its_own_cache_and_requests_go_where_the_model_is(
    stack: Stack,
) -> None:
    endpoint = endpoint_of(stack, "ml.g4dn.xlarge", count=2)

    replay(stack, endpoint, rounds=3)

    per_instance = stack.aws.loaded_by_instance(endpoint)
    assert sorted(len(models) for models in per_instance) == [2, 3]
    assert sorted(m for models in per_instance for m in models) == MODELS
    figures = window(stack, endpoint)
    assert (figures["hits"], figures["unloads"]) == (10, 0)


def test_a_disabled_cache_unloads_after_every_invocation(stack: Stack) -> None:
    endpoint = endpoint_of(stack, "ml.g5.xlarge", cache="Disabled")

    replay(stack, endpoint, rounds=2)

    assert stack.aws.loaded_models(endpoint) == []
    figures = window(stack, endpoint)
    assert (figures["requests"], figures["hits"], figures["unloads"]) == (10, 0, 10)
    assert figures["loaded"] == 0


def test_the_model_load_gpu_limit_keeps_gpu_memory_below_it(stack: Stack) -> None:
    # 15 copies: 3,841 MiB per model; four fill 94% of a T4, three under a limit of 0.8.
    archive = model_archive(
        {"m/config.pbtxt": BIG_CONFIG.replace("count: 16", "count: 15"), "m/1/model.onnx": b"x"}
    )
    full = endpoint_of(stack, "ml.g4dn.xlarge", archive=archive)
    limited = endpoint_of(
        stack,
        "ml.g4dn.xlarge",
        environment={"SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT": "0.8"},
        archive=archive,
    )

    replay(stack, full, rounds=3, models=4)
    replay(stack, limited, rounds=3, models=4)

    unlimited = window(stack, full)
    assert (unlimited["hits"], unlimited["unloads"]) == (8, 0)
    assert unlimited["memory"] > 90
    capped = window(stack, limited)
    assert capped["memory"] <= 80
    assert capped["unloads"] > 0
    assert len(stack.aws.loaded_models(limited)) == 3


def test_a_model_larger_than_the_instance_is_refused_507(stack: Stack) -> None:
    endpoint = endpoint_of(stack, "ml.g4dn.xlarge")
    huge = BIG_CONFIG.replace("count: 16", "count: 64")  # 16 GiB + a few bytes
    stack.upload("huge.tar.gz", model_archive({"m/config.pbtxt": huge, "m/1/model.onnx": b"x"}))
    runtime = stack.aws.client("sagemaker-runtime")

    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel="huge.tar.gz", Body=b"{}")

    response: dict[str, Any] = dict(excinfo.value.response)
    assert response["OriginalStatusCode"] == 507
    message = json.loads(response["OriginalMessage"])["error"]
    assert "16385 MiB of GPU memory" in message and "ml.g4dn.xlarge" in message


def test_the_metrics_carry_the_names_and_dimensions_aws_uses(stack: Stack) -> None:
    endpoint = endpoint_of(stack, "ml.g5.xlarge")
    replay(stack, endpoint, rounds=1)
    cloudwatch = stack.aws.client("cloudwatch")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}]

    def names(namespace: str) -> set[str]:
        found = cloudwatch.list_metrics(Namespace=namespace, Dimensions=dimensions)
        assert all(
            {d["Name"] for d in m["Dimensions"]} == {"EndpointName", "VariantName"}
            for m in found["Metrics"]
        )
        return {m["MetricName"] for m in found["Metrics"]}

    assert names("AWS/SageMaker") == {
        "ModelCacheHit",
        "LoadedModelCount",
        "ModelLoadingWaitTime",
        "ModelDownloadingTime",
        "ModelLoadingTime",
    }
    assert names("/aws/sagemaker/Endpoints") == {
        "GPUMemoryUtilization",
        "GPUUtilization",
        "MemoryUtilization",
    }


def test_size_from_endpoint_judges_the_cache_by_its_metrics(stack: Stack, tmp_path: Path) -> None:
    endpoint = endpoint_of(stack, "ml.g4dn.xlarge")
    replay(stack, endpoint, rounds=6)
    doc = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "thrash", "namespace": "ml"},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": ROLE,
            "artifacts": {"bucket": stack.bucket},
            "endpointName": endpoint,
            "instanceType": "ml.g4dn.xlarge",
            "models": [
                {
                    "name": f"m{i}",
                    "source": f"s3://{stack.bucket}/src/m{i}.onnx",
                    "platform": "onnxruntime_onnx",
                    "instanceGroups": [{"count": 16, "kind": "KIND_GPU"}],
                    "gpuMemoryMiB": 4097,
                }
                for i in range(5)
            ],
        },
    }
    path = tmp_path / "mep.yaml"
    path.write_text(yaml.safe_dump(doc))
    env = {
        **os.environ,
        "MME_AWS_ENDPOINT_URL": stack.aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    command = [sys.executable, "-m", "mme_operator.cli", "size", "-f", str(path)]

    done = subprocess.run(
        [*command, "--from-endpoint", "thrash", "--output", "json"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    [result] = json.loads(done.stdout)
    cache = result["cache"]
    assert (cache["invocations"], cache["cacheHitRatio"], cache["modelUnloads"]) == (30, 0.0, 27)
    verdict = cache["cacheHealthy"]
    assert (verdict["status"], verdict["reason"]) == ("False", "Thrashing")
    assert "use ml.g5.xlarge" in verdict["message"]
    assert result["recommended"] == "ml.g5.xlarge"

    text = subprocess.run(
        [*command, "--from-endpoint", endpoint], capture_output=True, text=True, timeout=120,
        check=False, env=env,
    )  # fmt: skip
    assert "CacheHealthy False (Thrashing)" in text.stdout
    assert f"cache of {endpoint} since" in text.stdout

    missing = subprocess.run(
        [*command, "--from-endpoint", "nope"], capture_output=True, text=True, timeout=120,
        check=False, env=env,
    )  # fmt: skip
    assert missing.returncode == 2 and "no ModelEndpoint in -f is named nope" in missing.stderr
