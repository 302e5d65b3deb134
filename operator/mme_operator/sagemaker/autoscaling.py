"""Target-tracking autoscaling of the endpoint's ``AllTraffic`` variant.

Application Auto Scaling scales ``sagemaker:variant:DesiredInstanceCount`` of resource
``endpoint/<endpoint>/variant/AllTraffic`` to keep ``SageMakerVariantInvocationsPerInstance``
(invocations per instance per minute) near the spec's target. The scalable target belongs to
the endpoint, and the endpoint to the operator, so no separate ownership tag is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import botocore.exceptions

from mme_operator.api import AutoscalingSpec
from mme_operator.sagemaker.errors import ErrorClass, classify
from mme_operator.sagemaker.resources import VARIANT_NAME

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling.client import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import (
        TargetTrackingScalingPolicyConfigurationTypeDef,
    )

# Final: the client stubs take these as Literal types.
SERVICE_NAMESPACE: Final = "sagemaker"
SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"
POLICY_NAME: Final = "mme-operator-invocations"
POLICY_TYPE: Final = "TargetTrackingScaling"
METRIC_TYPE: Final = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint_name: str) -> str:
    """The Application Auto Scaling resource id of the endpoint's variant."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}"


@dataclass(frozen=True)
class DesiredScaling:
    """The scalable target's bounds and the target-tracking policy the spec asks for."""

    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: float
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int


@dataclass(frozen=True)
class ObservedScaling:
    """The registered scalable target and, if present, the operator's policy on it."""

    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: float | None = None
    """None when the operator's policy is missing (or tracks another metric)."""
    scale_in_cooldown_seconds: int | None = None
    scale_out_cooldown_seconds: int | None = None

    def as_desired(self) -> DesiredScaling | None:
        """This observation as a DesiredScaling (to compare with ``==``); None without policy."""
        if (
            self.target_invocations_per_instance is None
            or self.scale_in_cooldown_seconds is None
            or self.scale_out_cooldown_seconds is None
        ):
            return None
        return DesiredScaling(
            min_capacity=self.min_capacity,
            max_capacity=self.max_capacity,
            target_invocations_per_instance=self.target_invocations_per_instance,
            scale_in_cooldown_seconds=self.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds=self.scale_out_cooldown_seconds,
        )


def desired_scaling(spec: AutoscalingSpec | None) -> DesiredScaling | None:
    """What ``spec.autoscaling`` asks for; None when autoscaling is off. Pure."""
    if spec is None:
        return None
    return DesiredScaling(
        min_capacity=spec.min_instances,
        max_capacity=spec.max_instances,
        target_invocations_per_instance=float(spec.target_invocations_per_instance),
        scale_in_cooldown_seconds=spec.scale_in_cooldown_seconds,
        scale_out_cooldown_seconds=spec.scale_out_cooldown_seconds,
    )


def observe_scaling(
    client: ApplicationAutoScalingClient, endpoint_name: str
) -> ObservedScaling | None:
    """The endpoint variant's scaling as registered now; None when no target is registered."""
    rid = resource_id(endpoint_name)
    targets = client.describe_scalable_targets(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceIds=[rid],
        ScalableDimension=SCALABLE_DIMENSION,
    )["ScalableTargets"]
    target = next((t for t in targets if t["ResourceId"] == rid), None)
    if target is None:
        return None
    policies = client.describe_scaling_policies(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=rid,
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyNames=[POLICY_NAME],
    )["ScalingPolicies"]
    policy = next(
        (p for p in policies if p["PolicyName"] == POLICY_NAME and p["ResourceId"] == rid), None
    )
    tracking = policy.get("TargetTrackingScalingPolicyConfiguration") if policy else None
    predefined = tracking.get("PredefinedMetricSpecification") if tracking else None
    if tracking is None or predefined is None or predefined["PredefinedMetricType"] != METRIC_TYPE:
        return ObservedScaling(
            min_capacity=target["MinCapacity"], max_capacity=target["MaxCapacity"]
        )
    return ObservedScaling(
        min_capacity=target["MinCapacity"],
        max_capacity=target["MaxCapacity"],
        target_invocations_per_instance=float(tracking["TargetValue"]),
        scale_in_cooldown_seconds=tracking.get("ScaleInCooldown"),
        scale_out_cooldown_seconds=tracking.get("ScaleOutCooldown"),
    )


def apply_scaling(
    client: ApplicationAutoScalingClient, endpoint_name: str, desired: DesiredScaling
) -> None:
    """Register the scalable target and put the target-tracking policy (both upserts).

    The endpoint must be InService: Application Auto Scaling refuses a variant that is
    still being created or updated (a RETRYABLE or TERMINAL error by :func:`classify`).
    """
    rid = resource_id(endpoint_name)
    client.register_scalable_target(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=rid,
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=desired.min_capacity,
        MaxCapacity=desired.max_capacity,
    )
    tracking: TargetTrackingScalingPolicyConfigurationTypeDef = {
        "TargetValue": desired.target_invocations_per_instance,
        "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC_TYPE},
        "ScaleInCooldown": desired.scale_in_cooldown_seconds,
        "ScaleOutCooldown": desired.scale_out_cooldown_seconds,
    }
    client.put_scaling_policy(
        PolicyName=POLICY_NAME,
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=rid,
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType=POLICY_TYPE,
        TargetTrackingScalingPolicyConfiguration=tracking,
    )


def remove_scaling(client: ApplicationAutoScalingClient, endpoint_name: str) -> None:
    """Delete the policy and deregister the target; what is already gone counts as done."""
    rid = resource_id(endpoint_name)
    try:
        client.delete_scaling_policy(
            PolicyName=POLICY_NAME,
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceId=rid,
            ScalableDimension=SCALABLE_DIMENSION,
        )
    except botocore.exceptions.ClientError as exc:
        if classify(exc) is not ErrorClass.NOT_FOUND:
            raise
    try:
        client.deregister_scalable_target(
            ServiceNamespace=SERVICE_NAMESPACE, ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION
        )
    except botocore.exceptions.ClientError as exc:
        if classify(exc) is not ErrorClass.NOT_FOUND:
            raise
