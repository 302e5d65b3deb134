"""spec.deploymentConfig: validated as SageMaker validates DeploymentConfig, sent to
UpdateEndpoint as its request member, and the rollout read back from DescribeEndpoint."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from mme_operator.api import ModelEndpointStatus, Reason, validate_resource
from mme_operator.api.status import RolloutStatus
from mme_operator.reconcile import plan_reconcile
from mme_operator.sagemaker.deployment import (
    deployment_request,
    describe_rollout,
    is_alarm_rollback,
    rollout_of,
)

from tests.unit.test_api_validation import GOOD
from tests.unit.test_plan import changed, desired_for, endpoint, observed

CANARY = {
    "blueGreenUpdatePolicy": {
        "trafficRoutingConfiguration": {
            "type": "CANARY",
            "waitIntervalInSeconds": 300,
            "canarySize": {"type": "INSTANCE_COUNT", "value": 1},
        },
        "terminationWaitInSeconds": 60,
        "maximumExecutionTimeoutInSeconds": 3600,
    },
    "autoRollbackConfiguration": {"alarms": [{"alarmName": "small-llms-5xx"}]},
}


def resource(deployment: dict[str, Any], count: int = 4) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    doc["spec"]["instanceCount"] = count
    doc["spec"]["deploymentConfig"] = deployment
    return doc


def problems_of(doc: dict[str, Any]) -> list[str]:
    _, problems = validate_resource(doc)
    return [str(p) for p in problems]


def test_a_canary_config_is_sent_to_update_endpoint_as_sagemaker_spells_it() -> None:
    parsed, problems = validate_resource(resource(CANARY))
    assert problems == []
    assert parsed is not None

    assert deployment_request(parsed.spec.deployment_config) == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
            },
            "TerminationWaitInSeconds": 60,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "small-llms-5xx"}]},
    }
    assert deployment_request(None) is None


def routing(**fields: Any) -> dict[str, Any]:
    return {"blueGreenUpdatePolicy": {"trafficRoutingConfiguration": fields}}


ROLLING = {
    "maximumBatchSize": {"type": "INSTANCE_COUNT", "value": 1},
    "waitIntervalInSeconds": 0,
}
BG = "spec.deploymentConfig.blueGreenUpdatePolicy"


@pytest.mark.parametrize(
    ("deployment", "count", "expected"),
    [
        (
            {
                **routing(type="ALL_AT_ONCE", waitIntervalInSeconds=0),
                "rollingUpdatePolicy": ROLLING,
            },
            4,
            "spec.deploymentConfig: set at most one of blueGreenUpdatePolicy or rollingUpdatePolicy",
        ),
        (
            routing(type="CANARY", waitIntervalInSeconds=0),
            4,
            f"{BG}.trafficRoutingConfiguration.canarySize: type CANARY needs canarySize",
        ),
        (routing(type="LINEAR", waitIntervalInSeconds=0), 4, "type LINEAR needs linearStepSize"),
        (
            routing(
                type="ALL_AT_ONCE",
                waitIntervalInSeconds=0,
                canarySize={"type": "INSTANCE_COUNT", "value": 1},
            ),
            4,
            "canarySize: only used with type CANARY",
        ),
        (
            routing(
                type="CANARY",
                waitIntervalInSeconds=0,
                canarySize={"type": "INSTANCE_COUNT", "value": 1},
            ),
            1,
            "1 of 1 instances (100%): SageMaker requires the canary to be at most 50%",
        ),
        (
            routing(
                type="LINEAR",
                waitIntervalInSeconds=0,
                linearStepSize={"type": "CAPACITY_PERCENT", "value": 60},
            ),
            4,
            "60%: SageMaker requires the linear step to be 10-50%",
        ),
        (
            {
                "rollingUpdatePolicy": {
                    **ROLLING,
                    "maximumBatchSize": {"type": "INSTANCE_COUNT", "value": 3},
                }
            },
            4,
            "rollingUpdatePolicy.maximumBatchSize: 3 of 4 instances (75%)",
        ),
        (
            routing(
                type="CANARY",
                waitIntervalInSeconds=0,
                canarySize={"type": "CAPACITY_PERCENT", "value": 101},
            ),
            4,
            "CAPACITY_PERCENT is at most 100",
        ),
        (routing(type="ALL_AT_ONCE", waitIntervalInSeconds=3601), 4, "waitIntervalInSeconds"),
        (routing(type="BLUE", waitIntervalInSeconds=0), 4, "trafficRoutingConfiguration.type"),
        (
            {
                **routing(type="ALL_AT_ONCE", waitIntervalInSeconds=0),
                "autoRollbackConfiguration": {"alarms": []},
            },
            4,
            "autoRollbackConfiguration.alarms",
        ),
        (
            {
                **routing(type="ALL_AT_ONCE", waitIntervalInSeconds=0),
                "autoRollbackConfiguration": {"alarms": [{"alarmName": "  "}]},
            },
            4,
            "alarmName",
        ),
        (
            {
                "blueGreenUpdatePolicy": {
                    "trafficRoutingConfiguration": {
                        "type": "ALL_AT_ONCE",
                        "waitIntervalInSeconds": 0,
                    },
                    "maximumExecutionTimeoutInSeconds": 599,
                }
            },
            4,
            "maximumExecutionTimeoutInSeconds",
        ),
    ],
    ids=[
        "both-policies",
        "canary-without-size",
        "linear-without-size",
        "size-of-another-type",
        "canary-over-half",
        "linear-step-over-half",
        "batch-over-half",
        "percent-over-100",
        "wait-over-an-hour",
        "unknown-type",
        "no-alarms",
        "blank-alarm",
        "timeout-under-600",
    ],
)
def test_what_sagemaker_refuses_is_refused_with_its_field(
    deployment: dict[str, Any], count: int, expected: str
) -> None:
    problems = problems_of(resource(deployment, count))
    assert any(expected in p for p in problems), problems


def test_valid_sizes_within_the_fleet_pass() -> None:
    linear = routing(
        type="LINEAR",
        waitIntervalInSeconds=0,
        linearStepSize={"type": "INSTANCE_COUNT", "value": 1},
    )
    rolling = {
        "rollingUpdatePolicy": {
            **ROLLING,
            "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 5},
        }
    }
    assert problems_of(resource(linear, 4)) == []
    assert problems_of(resource(rolling, 4)) == []
    assert (
        problems_of(resource({"autoRollbackConfiguration": {"alarms": [{"alarmName": "a"}]}})) == []
    )


def test_the_rollout_is_read_from_the_pending_deployment() -> None:
    described = {
        "EndpointStatus": "Updating",
        "PendingDeploymentSummary": {
            "EndpointConfigName": "ep-new",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "CurrentInstanceCount": 1,
                    "DesiredInstanceCount": 4,
                    "VariantStatus": [
                        {"Status": "Creating", "StartTime": "2026-12-02T06:00:00Z"},
                        {
                            "Status": "Baking",
                            "StartTime": "2026-12-02T06:05:00Z",
                            "StatusMessage": "baking the canary",
                        },
                    ],
                }
            ],
        },
    }
    rollout = rollout_of(described)
    assert rollout is not None
    assert (rollout.config_name, rollout.phase, rollout.new_instances) == ("ep-new", "Baking", 1)
    assert describe_rollout(rollout) == (
        "rollout of ep-new: Baking, 1 of 4 new instances take traffic, baking the canary"
    )
    assert rollout_of({**described, "EndpointStatus": "RollingBack"}).phase == "RollingBack"  # type: ignore[union-attr]
    assert rollout_of({"EndpointStatus": "InService"}) is None


def test_a_rollback_is_told_from_other_failures_by_its_alarm() -> None:
    assert is_alarm_rollback(
        "Deployment rolled back: CloudWatch alarm(s) [x] went into ALARM state"
    )
    assert not is_alarm_rollback("Injected failure: not enough capacity.")
    assert not is_alarm_rollback(None)


def test_a_rolled_back_update_is_not_reapplied_and_says_so() -> None:

    old = desired_for()
    new = desired_for(changed(instanceType="ml.g5.2xlarge"))
    old_config, new_config = old.sagemaker.endpoint_config.name, new.sagemaker.endpoint_config.name
    status = ModelEndpointStatus(
        endpoint_config_name=old_config, requested_endpoint_config_name=new_config
    )

    def after(failure: str, previous: ModelEndpointStatus = status) -> Any:
        state = observed(new, endpoint=endpoint(new, config=old_config, failure=failure))
        return plan_reconcile(new, state, previous)

    by_alarm = after("Deployment rolled back: CloudWatch alarm(s) [x] went into ALARM state")
    assert by_alarm.actions == ()
    assert by_alarm.blocked is not None and by_alarm.blocked.reason == Reason.ROLLED_BACK
    assert by_alarm.failed_config == new_config
    assert f"{old_config} keeps serving" in by_alarm.blocked.message
    # A reason without the word, after a pass saw the endpoint RollingBack from that config.
    seen = status.model_copy(
        update={"rollout": RolloutStatus(endpoint_config_name=new_config, phase="RollingBack")}
    )
    assert after("rolled back", seen).blocked.reason == Reason.ROLLED_BACK  # type: ignore[union-attr]
    # Any other failed update stays UpdateFailed.
    assert after("not enough capacity").blocked.reason == Reason.UPDATE_FAILED  # type: ignore[union-attr]
