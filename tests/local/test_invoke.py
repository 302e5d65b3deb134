"""InvokeEndpoint on a Multi-Model Endpoint: model download, layout checks, loading, LRU."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mme_operator.local import LocalAWS

from tests.local.conftest import CONFIG_PBTXT, DELAY, MODEL_PY, Stack, model_archive


@pytest.fixture
def endpoint(stack: Stack) -> str:
    return stack.endpoint(stack.config(stack.model()))


def invoke(stack: Stack, endpoint: str, target: str) -> dict:  # type: ignore[type-arg]
    runtime = stack.aws.client("sagemaker-runtime")
    response = runtime.invoke_endpoint(
        EndpointName=endpoint, TargetModel=target, ContentType="application/json", Body=b"{}"
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    return json.loads(response["Body"].read())  # type: ignore[no-any-return]


def test_good_archive_loads_and_describes_the_model(stack: Stack, endpoint: str) -> None:
    stack.upload("m-v1.tar.gz", model_archive())

    answer = invoke(stack, endpoint, "m-v1.tar.gz")

    assert answer["loaded"] is True
    assert answer["backend"] == "python"
    assert answer["inputs"][0]["name"] == "INPUT0"
    assert answer["instance_groups"] == [{"kind": "KIND_CPU", "count": 2}]
    assert answer["dynamic_batching"]["max_queue_delay_microseconds"] == "100"
    assert stack.aws.loaded_models(endpoint) == ["m-v1.tar.gz"]


def test_loaded_model_is_not_reloaded_when_overwritten(stack: Stack, endpoint: str) -> None:
    stack.upload("m.tar.gz", model_archive())
    invoke(stack, endpoint, "m.tar.gz")

    stack.upload("m.tar.gz", b"not an archive any more")

    assert invoke(stack, endpoint, "m.tar.gz")["loaded"] is True


def test_missing_archive_is_a_validation_error(stack: Stack, endpoint: str) -> None:
    runtime = stack.aws.client("sagemaker-runtime")

    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel="absent.tar.gz", Body=b"{}")

    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith(
        f"Failed to download model data(bucket: {stack.bucket}, key: mme/absent.tar.gz)."
    )
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("files", "why"),
    [
        (None, "failed to extract"),
        ({"m/1/model.py": MODEL_PY}, "config.pbtxt not found"),
        ({"m/config.pbtxt": CONFIG_PBTXT}, "no numeric version folder"),
        ({"m/config.pbtxt": "backend: [", "m/1/model.py": MODEL_PY}, "failed to poll"),
        (
            {"a/config.pbtxt": CONFIG_PBTXT, "a/1/model.py": "", "b/1/x": ""},
            "b/config.pbtxt not found",
        ),
        (
            {
                "a/config.pbtxt": CONFIG_PBTXT,
                "a/1/model.py": "",
                "b/config.pbtxt": CONFIG_PBTXT,
                "b/1/model.py": "",
            },
            "exactly one model folder",
        ),
        (
            {
                "e/config.pbtxt": 'platform: "ensemble"',
                "e/1/.keep": "",
                "f/config.pbtxt": 'platform:"ensemble"',
                "f/1/.keep": "",
            },
            "several ensembles",
        ),
        (
            {
                "e/config.pbtxt": 'platform: "ensemble"',
                "e/1/.keep": "",
                "step/config.pbtxt": 'name: "other"\nbackend: "python"',
                "step/1/model.py": "",
            },
            "unexpected model name 'other'",
        ),
    ],
    ids=[
        "not-gzip",
        "no-config",
        "no-version",
        "bad-config",
        "folder-without-config",
        "two-models",
        "two-ensembles",
        "step-name-mismatch",
    ],
)
def test_broken_archive_is_a_model_error(
    stack: Stack, endpoint: str, files: dict[str, str] | None, why: str
) -> None:
    stack.upload("broken.tar.gz", b"garbage" if files is None else model_archive(files))
    runtime = stack.aws.client("sagemaker-runtime")

    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel="broken.tar.gz", Body=b"{}")

    response: dict[str, Any] = dict(excinfo.value.response)
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    # Triton's MME front end answers a failed load 400 with {"error": <Triton's message>}.
    assert response["OriginalStatusCode"] == 400
    assert why in json.loads(response["OriginalMessage"])["error"]
    assert response["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{endpoint}")
    assert stack.aws.loaded_models(endpoint) == []


def test_unknown_endpoint_and_single_model_endpoint(stack: Stack) -> None:
    runtime = stack.aws.client("sagemaker-runtime")
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName="nope", TargetModel="m.tar.gz", Body=b"{}")
    assert excinfo.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": "Endpoint nope of account 123456789012 not found.",
    }

    single = stack.endpoint(stack.config(stack.model(mode="SingleModel")))
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(EndpointName=single, TargetModel="m.tar.gz", Body=b"{}")
    assert "is not a multi-model endpoint" in excinfo.value.response["Error"]["Message"]


def test_least_recently_used_model_is_evicted() -> None:
    # Each model takes 2 copies x (weights x 2.0 + 256 MiB) = 513 MiB: two fit, three do not.
    with LocalAWS(endpoint_delay=DELAY, triton=False, model_memory_bytes=1100 * 2**20) as aws:
        stack = Stack(aws)
        endpoint = stack.endpoint(stack.config(stack.model()))
        for name in ("a", "b", "c"):
            stack.upload(f"{name}.tar.gz", model_archive())
        invoke(stack, endpoint, "a.tar.gz")
        invoke(stack, endpoint, "b.tar.gz")
        invoke(stack, endpoint, "a.tar.gz")  # a is now the most recently used

        invoke(stack, endpoint, "c.tar.gz")

        assert aws.loaded_models(endpoint) == ["a.tar.gz", "c.tar.gz"]
        assert aws.calls["InvokeEndpoint"] == 4


def test_update_starts_a_fleet_with_nothing_loaded(stack: Stack, endpoint: str) -> None:
    stack.upload("m.tar.gz", model_archive())
    invoke(stack, endpoint, "m.tar.gz")
    model = stack.sm.describe_endpoint_config(
        EndpointConfigName=stack.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    )["ProductionVariants"][0]["ModelName"]

    stack.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=stack.config(model))
    stack.wait(endpoint, "InService")
    invoke(stack, endpoint, "m.tar.gz")

    assert stack.aws.loaded_models(endpoint) == ["m.tar.gz"]
