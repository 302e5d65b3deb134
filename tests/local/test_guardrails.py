"""Deployment guardrails in the local SageMaker: canary, linear and rolling updates over
time, auto-rollback on a CloudWatch alarm of the same local AWS, and what UpdateEndpoint
refuses, all through boto3."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mme_operator.local.control_plane import SageMakerControlPlane
from mme_operator.local.faults import FaultController

from tests.local.conftest import (
    ROLE,
    TRITON_IMAGE,
    Stack,
    model_archive,
    put_ok_alarm,
    unique,
)
from tests.local.test_shapes import check


def alarm(stack: Stack) -> str:
    return put_ok_alarm(stack.aws.client("cloudwatch"))


def set_alarm(stack: Stack, name: str, state: str) -> None:
    stack.aws.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue=state, StateReason="test"
    )


def canary(wait: int, alarms: list[str], value: int = 1) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": wait,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": value},
            }
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


def new_fleet(described: dict[str, Any]) -> tuple[str, int]:
    """(VariantStatus, instances taking traffic) of the pending fleet."""
    [variant] = described["PendingDeploymentSummary"]["ProductionVariants"]
    return variant["VariantStatus"][0]["Status"], variant["CurrentInstanceCount"]


def watch(stack: Stack, endpoint: str, until: str, timeout: float = 15.0) -> list[tuple[Any, ...]]:
    """Each distinct (EndpointStatus, new fleet status, its instances, old fleet instances)
    DescribeEndpoint shows, in order, until EndpointStatus is ``until``."""
    seen: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = stack.sm.describe_endpoint(EndpointName=endpoint)
        check("DescribeEndpoint", described)  # in botocore's shape at every step
        old = described["ProductionVariants"][0]["CurrentInstanceCount"]
        pending = new_fleet(described) if "PendingDeploymentSummary" in described else (None, None)
        row = (described["EndpointStatus"], *pending, old)
        if not seen or seen[-1] != row:
            seen.append(row)
        if described["EndpointStatus"] == until:
            return seen
        time.sleep(0.03)
    raise AssertionError(f"{endpoint} never {until}: {seen}")


def test_a_canary_whose_alarm_goes_off_while_baking_rolls_back(stack: Stack) -> None:
    model = stack.model()
    old, new = stack.config(model, count=2), stack.config(model, "ml.g5.2xlarge", 2)
    endpoint = stack.endpoint(old)
    errors = alarm(stack)

    stack.sm.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=new, DeploymentConfig=canary(60, [errors])
    )
    deadline = time.monotonic() + 10
    while new_fleet(stack.sm.describe_endpoint(EndpointName=endpoint)) != ("Baking", 1):
        assert time.monotonic() < deadline, "the canary never baked"
        time.sleep(0.03)
    set_alarm(stack, errors, "ALARM")
    rolling_back = stack.wait(endpoint, "RollingBack")
    check("DescribeEndpoint", rolling_back)
    # All traffic is back on the old fleet while the new one goes.
    assert new_fleet(rolling_back) == ("Deleting", 0)
    assert rolling_back["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    stack.upload("m.tar.gz", model_archive())
    runtime = stack.aws.client("sagemaker-runtime")
    # The old fleet serves through the rollback.
    answer = runtime.invoke_endpoint(EndpointName=endpoint, TargetModel="m.tar.gz", Body=b"{}")
    assert answer["InvokedProductionVariant"] == "AllTraffic"

    done = stack.wait(endpoint, "InService")
    assert done["EndpointConfigName"] == old
    assert errors in done["FailureReason"] and "ALARM" in done["FailureReason"]
    assert "PendingDeploymentSummary" not in done
    assert done["LastDeploymentConfig"] == canary(60, [errors])
    assert done["ProductionVariants"][0]["CurrentInstanceCount"] == 2


def test_a_canary_whose_alarm_stays_ok_completes_in_two_steps(stack: Stack) -> None:
    model = stack.model()
    old, new = stack.config(model, count=2), stack.config(model, "ml.g5.2xlarge", 2)
    endpoint = stack.endpoint(old)
    errors = alarm(stack)

    stack.sm.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=new, DeploymentConfig=canary(1, [errors])
    )
    seen = watch(stack, endpoint, "InService")

    # Provisioning, the canary baking (the old fleet whole), then all traffic baking.
    assert [row for row in seen if row[0] == "Updating"] == [
        ("Updating", "Creating", 0, 2),
        ("Updating", "Baking", 1, 2),
        ("Updating", "Baking", 2, 2),
    ]
    done = stack.sm.describe_endpoint(EndpointName=endpoint)
    assert done["EndpointConfigName"] == new
    assert "FailureReason" not in done


def test_a_linear_update_moves_traffic_step_by_step(stack: Stack) -> None:
    model = stack.model()
    old, new = stack.config(model, count=4), stack.config(model, "ml.g5.2xlarge", 4)
    endpoint = stack.endpoint(old)
    linear = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 1,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            }
        }
    }

    stack.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new, DeploymentConfig=linear)
    seen = watch(stack, endpoint, "InService")

    # A quarter of the new fleet more per step; the old fleet shrinks as it grows.
    assert [row for row in seen if row[0] == "Updating"] == [
        ("Updating", "Creating", 0, 4),
        ("Updating", "Baking", 1, 3),
        ("Updating", "Baking", 2, 2),
        ("Updating", "Baking", 3, 1),
        ("Updating", "Baking", 4, 0),
    ]
    assert stack.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == new


def test_a_rolling_update_replaces_the_fleet_in_batches(stack: Stack) -> None:
    model = stack.model()
    old, new = stack.config(model, count=4), stack.config(model, "ml.g5.2xlarge", 4)
    endpoint = stack.endpoint(old)
    rolling = {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
            "WaitIntervalInSeconds": 1,
        }
    }

    stack.sm.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=new, DeploymentConfig=rolling
    )
    seen = watch(stack, endpoint, "InService")

    assert [row for row in seen if row[0] == "Updating"] == [
        ("Updating", "Creating", 0, 4),
        ("Updating", "Baking", 2, 2),
        ("Updating", "Creating", 2, 2),
        ("Updating", "Baking", 4, 0),
    ]


BLUE_GREEN = {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}
ROLLING = {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 0}


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            {"BlueGreenUpdatePolicy": BLUE_GREEN, "RollingUpdatePolicy": ROLLING},
            "not both",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 0}
                }
            },
            "requires CanarySize",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 0}
                }
            },
            "requires LinearStepSize",
        ),
        (canary(0, [], value=3)["BlueGreenUpdatePolicy"], "less than or equal to 50%"),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "WaitIntervalInSeconds": 0,
                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 5},
                    }
                }
            },
            "10-50%",
        ),
        (
            {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 3},
                    "WaitIntervalInSeconds": 0,
                }
            },
            "between 5% and 50%",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "ALL_AT_ONCE",
                        "WaitIntervalInSeconds": 3601,
                    }
                }
            },
            "less than or equal to 3600",
        ),
        (
            {
                "BlueGreenUpdatePolicy": BLUE_GREEN,
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "no-such-alarm"}]},
            },
            "'no-such-alarm' does not exist",
        ),
    ],
    ids=[
        "both",
        "canary-size",
        "linear-size",
        "canary-over-half",
        "linear-step",
        "batch",
        "wait",
        "alarm",
    ],
)
def test_update_endpoint_refuses_what_sagemaker_refuses(
    stack: Stack, deployment: dict[str, Any], message: str
) -> None:
    if "TrafficRoutingConfiguration" in deployment:
        deployment = {"BlueGreenUpdatePolicy": deployment}
    model = stack.model()
    old, new = stack.config(model, count=4), stack.config(model, "ml.g5.2xlarge", 4)
    endpoint = stack.endpoint(old)

    with pytest.raises(ClientError) as excinfo:
        stack.sm.update_endpoint(
            EndpointName=endpoint, EndpointConfigName=new, DeploymentConfig=deployment
        )

    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert message in error["Message"]
    described = stack.sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == old


def test_rolling_refuses_a_multi_variant_endpoint(stack: Stack) -> None:
    model = stack.model()
    variants = [
        {
            "VariantName": name,
            "ModelName": model,
            "InstanceType": "ml.g5.xlarge",
            "InitialInstanceCount": 4,
        }
        for name in ("A", "B")
    ]
    old, new = unique("config"), unique("config")
    stack.sm.create_endpoint_config(EndpointConfigName=old, ProductionVariants=variants)
    stack.sm.create_endpoint_config(
        EndpointConfigName=new,
        ProductionVariants=[{**v, "InstanceType": "ml.g5.2xlarge"} for v in variants],
    )
    endpoint = stack.endpoint(old)

    with pytest.raises(ClientError, match="multi-variant"):
        stack.sm.update_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=new,
            DeploymentConfig={"RollingUpdatePolicy": ROLLING},
        )


class Clock:
    """A clock the test moves: SageMaker's baking periods last up to an hour."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_rollout_past_its_execution_timeout_is_rolled_back() -> None:

    clock = Clock()
    plane = SageMakerControlPlane(1.0, FaultController(), lambda bucket: True, clock=clock)

    def call(operation: str, **request: Any) -> dict[str, Any]:
        return plane.dispatch("us-east-1", operation, request)

    call(
        "CreateModel",
        ModelName="m",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": TRITON_IMAGE,
            "ModelDataUrl": "s3://b/mme/",
            "Mode": "MultiModel",
        },
    )
    for name, instance_type in (("old", "ml.g5.xlarge"), ("new", "ml.g5.2xlarge")):
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": instance_type}
        call(
            "CreateEndpointConfig",
            EndpointConfigName=name,
            ProductionVariants=[{**variant, "InitialInstanceCount": 4}],
        )
    call("CreateEndpoint", EndpointName="ep", EndpointConfigName="old")
    clock.now += 2
    linear = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 3600,
                "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
            },
            "MaximumExecutionTimeoutInSeconds": 7200,
        }
    }
    call("UpdateEndpoint", EndpointName="ep", EndpointConfigName="new", DeploymentConfig=linear)

    clock.now += 3600
    assert new_fleet(call("DescribeEndpoint", EndpointName="ep")) == ("Baking", 1)
    clock.now += 3601  # past the time limit, during the second step
    rolling_back = call("DescribeEndpoint", EndpointName="ep")
    assert rolling_back["EndpointStatus"] == "RollingBack"
    clock.now += 2
    done = call("DescribeEndpoint", EndpointName="ep")
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", "old")
    assert "MaximumExecutionTimeoutInSeconds (7200 s)" in done["FailureReason"]
    assert "alarm" not in done["FailureReason"].lower()
