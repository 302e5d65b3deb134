"""Fault injection and call counting, from Python and over the admin HTTP API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mme_operator.local import LocalAWS

from tests.local.conftest import Stack

FAST_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 3})


def admin(aws: LocalAWS, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(aws.endpoint_url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_throttling_surfaces_after_retries(aws: LocalAWS) -> None:
    sm = aws.client("sagemaker", config=FAST_RETRIES)
    aws.faults.throttle(100, operations=["ListEndpoints"])

    with pytest.raises(ClientError) as excinfo:
        sm.list_endpoints()

    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert aws.calls["ListEndpoints"] == 3
    sm.list_models()  # other operations are untouched


def test_server_error_is_retried_then_succeeds(aws: LocalAWS) -> None:
    sm = aws.client("sagemaker", config=FAST_RETRIES)
    aws.faults.server_error("ServiceUnavailable", count=1)

    response = sm.list_endpoints()

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert aws.calls["ListEndpoints"] == 2


def test_internal_failure_is_a_500(aws: LocalAWS) -> None:
    sm = aws.client(
        "sagemaker", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    aws.faults.server_error("InternalFailure", operations="DescribeEndpoint")

    with pytest.raises(ClientError) as excinfo:
        sm.describe_endpoint(EndpointName="whatever")

    assert excinfo.value.response["Error"]["Code"] == "InternalFailure"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_fail_next_create(stack: Stack) -> None:
    config = stack.config(stack.model())
    stack.aws.faults.fail_next_create("Insufficient capacity for ml.g5.xlarge.")

    failed = stack.wait(stack.endpoint(config, wait=False), "Failed", "InService")
    healthy = stack.wait(stack.endpoint(config, wait=False), "Failed", "InService")

    assert failed["EndpointStatus"] == "Failed"
    assert failed["FailureReason"] == "Insufficient capacity for ml.g5.xlarge."
    assert healthy["EndpointStatus"] == "InService"


def test_fail_next_update_rolls_back(stack: Stack) -> None:
    model = stack.model()
    old = stack.config(model)
    name = stack.endpoint(old)
    stack.aws.faults.fail_next_update("Injected: health check failed.")

    stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=stack.config(model))
    after = stack.wait(name, "InService")

    assert after["EndpointConfigName"] == old
    assert after["FailureReason"] == "Injected: health check failed."


def test_endpoint_fails_after_in_service(stack: Stack) -> None:
    name = stack.endpoint(stack.config(stack.model()))

    stack.aws.faults.fail_endpoint(name, "Instance retired.")

    described = stack.sm.describe_endpoint(EndpointName=name)
    assert (described["EndpointStatus"], described["FailureReason"]) == (
        "Failed",
        "Instance retired.",
    )


def test_admin_http_api(stack: Stack) -> None:
    aws = stack.aws
    admin(
        aws,
        "POST",
        "/_local/faults",
        {"action": "throttle", "percent": 100, "operations": ["DescribeModel"], "count": 1},
    )
    admin(aws, "POST", "/_local/faults", [{"action": "latency", "seconds": 0.01}])
    assert admin(aws, "GET", "/_local/faults")["errors"][0]["operations"] == ["DescribeModel"]

    model = stack.model()
    stack.sm.describe_model(ModelName=model)  # throttled once, then retried

    calls = admin(aws, "GET", "/_local/calls")
    assert calls["DescribeModel"] == 2
    assert calls["CreateModel"] == 1
    assert "UpdateEndpoint" not in calls
    assert admin(aws, "DELETE", "/_local/calls") == {}
    assert admin(aws, "DELETE", "/_local/faults")["errors"] == []


def test_admin_rejects_unknown_action(aws: LocalAWS) -> None:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        admin(aws, "POST", "/_local/faults", {"action": "explode"})
    assert excinfo.value.code == 400
