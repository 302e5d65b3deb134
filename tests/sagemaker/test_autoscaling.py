"""Autoscaling of the endpoint variant against moto's Application Auto Scaling over HTTP."""

from typing import Any

from mme_operator.api import AutoscalingSpec
from mme_operator.sagemaker import (
    DesiredScaling,
    apply_scaling,
    desired_scaling,
    observe_scaling,
    remove_scaling,
)
from mme_operator.sagemaker.autoscaling import POLICY_NAME, resource_id

ENDPOINT = "ml-small-llms"


def spec(**changes: Any) -> AutoscalingSpec:
    return AutoscalingSpec.model_validate(
        {"minInstances": 1, "maxInstances": 4, "targetInvocationsPerInstance": 200, **changes}
    )


def test_desired_scaling_is_none_when_off_and_follows_the_spec() -> None:
    assert desired_scaling(None) is None
    assert desired_scaling(spec(scaleInCooldownSeconds=600)) == DesiredScaling(
        min_capacity=1,
        max_capacity=4,
        target_invocations_per_instance=200.0,
        scale_in_cooldown_seconds=600,
        scale_out_cooldown_seconds=60,
    )
    assert resource_id(ENDPOINT) == "endpoint/ml-small-llms/variant/AllTraffic"


def test_nothing_registered_observes_as_none(autoscaling: Any) -> None:
    assert observe_scaling(autoscaling, ENDPOINT) is None


def test_apply_then_observe_gives_back_what_was_asked(autoscaling: Any) -> None:
    desired = desired_scaling(spec())
    assert desired is not None
    apply_scaling(autoscaling, ENDPOINT, desired)
    observed = observe_scaling(autoscaling, ENDPOINT)
    assert observed is not None
    assert observed.as_desired() == desired

    policy = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][
        0
    ]
    assert policy["PolicyName"] == POLICY_NAME
    assert policy["PolicyType"] == "TargetTrackingScaling"
    metric = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert metric == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def test_applying_a_change_updates_in_place(autoscaling: Any) -> None:
    first = desired_scaling(spec())
    second = desired_scaling(spec(maxInstances=8, targetInvocationsPerInstance=50))
    assert first is not None and second is not None
    apply_scaling(autoscaling, ENDPOINT, first)
    apply_scaling(autoscaling, ENDPOINT, second)
    observed = observe_scaling(autoscaling, ENDPOINT)
    assert observed is not None and observed.as_desired() == second
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert len(targets["ScalableTargets"]) == 1


def test_a_target_without_our_policy_observes_without_policy(autoscaling: Any) -> None:
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id(ENDPOINT),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    observed = observe_scaling(autoscaling, ENDPOINT)
    assert observed is not None
    assert (observed.min_capacity, observed.max_capacity) == (1, 2)
    assert observed.as_desired() is None


def test_remove_scaling_then_again_is_success(autoscaling: Any) -> None:
    desired = desired_scaling(spec())
    assert desired is not None
    apply_scaling(autoscaling, ENDPOINT, desired)
    remove_scaling(autoscaling, ENDPOINT)
    assert observe_scaling(autoscaling, ENDPOINT) is None
    remove_scaling(autoscaling, ENDPOINT)


def test_other_endpoints_scaling_is_not_observed(autoscaling: Any) -> None:
    desired = desired_scaling(spec())
    assert desired is not None
    apply_scaling(autoscaling, "ml-small-llms-2", desired)
    assert observe_scaling(autoscaling, ENDPOINT) is None
