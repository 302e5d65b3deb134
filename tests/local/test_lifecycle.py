"""The endpoint lifecycle and error answers of the local SageMaker, seen through boto3."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.local.conftest import TRITON_IMAGE, Stack, unique


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def test_endpoint_goes_creating_then_in_service(stack: Stack) -> None:
    config = stack.config(stack.model())
    name = stack.endpoint(config, wait=False)

    creating = stack.sm.describe_endpoint(EndpointName=name)
    assert creating["EndpointStatus"] == "Creating"
    assert creating["EndpointArn"] == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"

    in_service = stack.wait(name, "InService")
    assert in_service["EndpointConfigName"] == config
    variant = in_service["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 1
    assert variant["DeployedImages"][0]["SpecifiedImage"] == TRITON_IMAGE
    assert "FailureReason" not in in_service


def test_update_shows_pending_deployment_then_switches_config(stack: Stack) -> None:
    model = stack.model()
    old, new = stack.config(model), stack.config(model, "ml.g5.2xlarge")
    name = stack.endpoint(old)
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
        }
    }

    stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=deployment)

    updating = stack.sm.describe_endpoint(EndpointName=name)
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == old
    pending = updating["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == new
    assert pending["ProductionVariants"][0]["InstanceType"] == "ml.g5.2xlarge"

    done = stack.wait(name, "InService")
    assert done["EndpointConfigName"] == new
    assert "PendingDeploymentSummary" not in done
    assert done["LastDeploymentConfig"] == deployment


def test_delete_goes_deleting_then_gone(stack: Stack) -> None:
    name = stack.endpoint(stack.config(stack.model()))

    stack.sm.delete_endpoint(EndpointName=name)

    assert stack.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Deleting"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            stack.sm.describe_endpoint(EndpointName=name)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ValidationException"
            break
        time.sleep(0.05)
    else:
        pytest.fail("endpoint never disappeared")
    names = [e["EndpointName"] for e in stack.sm.list_endpoints()["Endpoints"]]
    assert name not in names


def test_update_while_creating_is_refused(stack: Stack) -> None:
    config = stack.config(stack.model())
    name = stack.endpoint(config, wait=False)

    with pytest.raises(ClientError) as excinfo:
        stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=config)

    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
    assert error_of(excinfo) == (
        "ValidationException",
        f'Cannot update in-progress endpoint "{arn}".',
    )


def test_errors_say_what_aws_says(stack: Stack) -> None:
    config = stack.config(stack.model())
    name = stack.endpoint(config, wait=False)
    arn = "arn:aws:sagemaker:us-east-1:123456789012"

    with pytest.raises(ClientError) as excinfo:
        stack.sm.create_endpoint(EndpointName=name.upper(), EndpointConfigName=config)
    assert error_of(excinfo) == (
        "ValidationException",
        f'Cannot create already existing endpoint "{arn}:endpoint/{name}".',
    )
    with pytest.raises(ClientError) as excinfo:
        stack.sm.describe_endpoint(EndpointName="Missing-Endpoint")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Could not find endpoint "{arn}:endpoint/missing-endpoint".',
    )
    with pytest.raises(ClientError) as excinfo:
        stack.sm.describe_model(ModelName="missing-model")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Could not find model "{arn}:model/missing-model".',
    )
    with pytest.raises(ClientError) as excinfo:
        stack.sm.describe_endpoint_config(EndpointConfigName="missing-config")
    assert error_of(excinfo) == (
        "ValidationException",
        f'Could not find endpoint configuration "{arn}:endpoint-config/missing-config".',
    )
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == (
        "ValidationException"
    )


@pytest.mark.parametrize(
    ("case", "reason_part"),
    [
        ("missing model", "Could not find model"),
        ("not a Triton image", "not an NVIDIA Triton Inference Server image"),
        ("unknown instance type", "instance type ml.g5.huge is not supported"),
        ("missing bucket", "Failed to download model data"),
    ],
)
def test_bad_deployments_end_failed(stack: Stack, case: str, reason_part: str) -> None:
    if case == "missing model":
        model = stack.model()
        config = stack.config(model)
        stack.sm.delete_model(ModelName=model)  # allowed, as on SageMaker
    elif case == "not a Triton image":
        image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-gpu"
        config = stack.config(stack.model(image=image))
    elif case == "unknown instance type":
        config = stack.config(stack.model(), instance_type="ml.g5.huge")
    else:
        config = stack.config(stack.model(bucket=unique("no-such-bucket")))

    name = stack.endpoint(config, wait=False)

    failed = stack.wait(name, "Failed", "InService")
    assert failed["EndpointStatus"] == "Failed"
    assert reason_part in failed["FailureReason"]


def test_failed_update_rolls_back_to_old_config(stack: Stack) -> None:
    model = stack.model()
    old = stack.config(model)
    bad = stack.config(model, instance_type="ml.nonexistent.xlarge")
    name = stack.endpoint(old)

    stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=bad)
    assert stack.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"

    after = stack.wait(name, "InService", "Failed")
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == old
    assert "ml.nonexistent.xlarge" in after["FailureReason"]

    # A good update afterwards clears the failure.
    stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=stack.config(model))
    time.sleep(0.05)
    assert "FailureReason" not in stack.wait(name, "InService")


def test_model_and_config_can_be_deleted_while_in_use(stack: Stack) -> None:
    model = stack.model()
    config = stack.config(model)
    name = stack.endpoint(config)

    stack.sm.delete_endpoint_config(EndpointConfigName=config)
    stack.sm.delete_model(ModelName=model)

    assert stack.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"


def test_lists_filter_and_page(stack: Stack) -> None:
    model = stack.model()
    config = stack.config(model)
    prefix = unique("listed")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        stack.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)

    paginator = stack.sm.get_paginator("list_endpoints")
    pages = list(paginator.paginate(NameContains=prefix, PaginationConfig={"PageSize": 2}))
    listed = [e["EndpointName"] for page in pages for e in page["Endpoints"]]

    assert len(pages) == 2
    assert listed == list(reversed(names))  # newest first
    models = stack.sm.list_models(NameContains=model)["Models"]
    assert [m["ModelName"] for m in models] == [model]
    configs = stack.sm.list_endpoint_configs(NameContains=config)["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in configs] == [config]


def test_tags_add_list_delete(stack: Stack) -> None:
    model = stack.model()
    arn = stack.sm.describe_model(ModelName=model)["ModelArn"]

    stack.sm.add_tags(
        ResourceArn=arn, Tags=[{"Key": "owner", "Value": "uid-1"}, {"Key": "x", "Value": "1"}]
    )
    stack.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "x", "Value": "2"}])
    assert {t["Key"]: t["Value"] for t in stack.sm.list_tags(ResourceArn=arn)["Tags"]} == {
        "owner": "uid-1",
        "x": "2",
    }

    stack.sm.delete_tags(ResourceArn=arn, TagKeys=["x"])
    assert stack.sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "owner", "Value": "uid-1"}]


def test_tags_given_at_create_are_listed(stack: Stack) -> None:
    config = stack.config(stack.model())
    name = unique("ep")
    arn = stack.sm.create_endpoint(
        EndpointName=name, EndpointConfigName=config, Tags=[{"Key": "owner", "Value": "me"}]
    )["EndpointArn"]

    assert stack.sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "owner", "Value": "me"}]


def test_region_comes_from_the_signature(aws) -> None:  # type: ignore[no-untyped-def]
    west = aws.client("sagemaker", region_name="eu-west-1")
    east = aws.client("sagemaker")
    name = unique("model")
    west.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": TRITON_IMAGE, "Mode": "MultiModel"},
    )

    assert west.describe_model(ModelName=name)["ModelArn"].startswith(
        "arn:aws:sagemaker:eu-west-1:"
    )
    with pytest.raises(ClientError):
        east.describe_model(ModelName=name)


@pytest.mark.parametrize("instance_type", ["ml.g5.12xlarge", "ml.p4d.24xlarge", "ml.inf2.xlarge"])
def test_a_multi_model_endpoint_on_a_non_mme_type_fails(stack: Stack, instance_type: str) -> None:
    name = stack.endpoint(stack.config(stack.model(), instance_type), wait=False)

    failed = stack.wait(name, "Failed")

    assert instance_type in failed["FailureReason"]
    assert "multi-model" in failed["FailureReason"]


def test_an_unknown_instance_type_fails_the_endpoint(stack: Stack) -> None:
    name = stack.endpoint(stack.config(stack.model(), "ml.zz9.xlarge"), wait=False)

    failed = stack.wait(name, "Failed")

    assert "ml.zz9.xlarge is not supported" in failed["FailureReason"]
