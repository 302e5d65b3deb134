"""Fault injection and call counting, from Python and over the admin HTTP API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import botocore.exceptions
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


# -- faults after the side effect: the call took effect, its answer was lost -------------

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


def create_model(sm: Any, stack: Stack, name: str) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={
            "Image": "785573368785.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3",
            "ModelDataUrl": f"s3://{stack.bucket}/mme/",
            "Mode": "MultiModel",
        },
    )


def test_a_fault_after_create_leaves_the_model_created(stack: Stack) -> None:
    sm = stack.aws.client("sagemaker", config=ONE_ATTEMPT)
    before = stack.aws.faults.injected()
    stack.aws.faults.server_error(operations="CreateModel", count=1, after=True)

    with pytest.raises(ClientError) as excinfo:
        create_model(sm, stack, "lost-answer")

    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert sm.describe_model(ModelName="lost-answer")["ModelName"] == "lost-answer"
    assert stack.aws.faults.injected() - before == {"sagemaker:CreateModel:after": 1}


def test_a_timeout_after_create_leaves_the_model_created(stack: Stack) -> None:
    sm = stack.aws.client(
        "sagemaker", config=ONE_ATTEMPT.merge(Config(read_timeout=0.3, connect_timeout=1))
    )
    stack.aws.faults.timeout_after(1.0, operations="CreateModel", count=1)

    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        create_model(sm, stack, "no-answer")

    assert sm.describe_model(ModelName="no-answer")["ModelName"] == "no-answer"


def test_s3_faults_before_and_after_the_effect_go_over_the_wire(stack: Stack) -> None:
    s3 = stack.aws.client("s3", config=ONE_ATTEMPT)
    faults = stack.aws.faults
    before = faults.injected()
    faults.server_error(operations="PutObject", count=1, service="s3")
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=stack.bucket, Key="before", Body=b"x")
    assert excinfo.value.response["Error"]["Code"] == "InternalError"
    assert "Contents" not in s3.list_objects_v2(Bucket=stack.bucket, Prefix="before")

    faults.server_error(operations="PutObject", count=1, service="s3", after=True)
    with pytest.raises(ClientError):
        s3.put_object(Bucket=stack.bucket, Key="after", Body=b"x")
    assert s3.get_object(Bucket=stack.bucket, Key="after")["Body"].read() == b"x"

    faults.throttle(100, operations="DeleteObject", count=1, service="s3")
    with pytest.raises(ClientError) as excinfo:
        s3.delete_object(Bucket=stack.bucket, Key="after")
    assert excinfo.value.response["Error"]["Code"] == "SlowDown"
    assert faults.injected() - before == {
        "s3:PutObject:before": 1,
        "s3:PutObject:after": 1,
        "s3:DeleteObject:before": 1,
    }


def test_an_s3_fault_names_its_operations(aws: LocalAWS) -> None:
    with pytest.raises(ValueError, match="names its operations"):
        aws.faults.server_error(service="s3")


def test_an_autoscaling_fault_refuses_the_call_as_aws_does(aws: LocalAWS) -> None:
    autoscaling = aws.client("application-autoscaling", config=FAST_RETRIES)
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/denied/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/mme-operator/pod is not authorized to "
        "perform: application-autoscaling:RegisterScalableTarget"
    )
    aws.faults.error(
        "AccessDeniedException",
        denied,
        operations="RegisterScalableTarget",
        count=1,
        service="application-autoscaling",
    )
    with pytest.raises(ClientError) as excinfo:
        autoscaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    assert excinfo.value.response["Error"] == {"Code": "AccessDeniedException", "Message": denied}
    # Refused before it ran: nothing is registered. The next call goes through.
    registered = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[target["ResourceId"]]
    )
    assert registered["ScalableTargets"] == []
    autoscaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    assert aws.faults.injected()["application-autoscaling:RegisterScalableTarget:before"] == 1
    with pytest.raises(ValueError, match="names its operations"):
        aws.faults.error("AccessDeniedException", denied, service="application-autoscaling")
    with pytest.raises(ValueError, match="before it runs"):
        aws.faults.server_error(
            operations="PutScalingPolicy", service="application-autoscaling", after=True
        )
