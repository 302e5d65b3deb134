"""Deployment guardrails: the DeploymentConfig sent with UpdateEndpoint, and the rollout read back.

The spec mirrors SageMaker's ``DeploymentConfig`` field for field in camelCase, so the
request is the spec with each key's first letter raised. While an update runs,
DescribeEndpoint shows it in ``PendingDeploymentSummary``: the new (green) fleet's variant,
its instance count and weight so far, and ``VariantStatus`` (Creating, ActivatingTraffic,
Baking, ...); ``EndpointStatus`` is ``RollingBack`` while an alarm's rollback runs, and
``InService`` on the old config with ``FailureReason`` after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mme_operator.api.spec import DeploymentConfigSpec


def deployment_request(config: DeploymentConfigSpec | None) -> dict[str, Any] | None:
    """``spec.deploymentConfig`` as UpdateEndpoint's ``DeploymentConfig``; None when unset."""
    if config is None:
        return None
    return _aws_members(config.to_k8s())


def _aws_members(members: dict[str, Any]) -> dict[str, Any]:
    return {key[:1].upper() + key[1:]: _aws_value(value) for key, value in members.items()}


def _aws_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _aws_members(value)
    if isinstance(value, list):
        return [_aws_value(item) for item in value]
    return value


@dataclass(frozen=True)
class Rollout:
    """An update under way, as DescribeEndpoint's PendingDeploymentSummary shows it."""

    config_name: str
    phase: str
    """The new fleet's latest VariantStatus (Creating, ActivatingTraffic, Baking, Updating,
    Deleting), or RollingBack when EndpointStatus says so."""
    new_instances: int | None = None
    """Instances of the new fleet taking traffic so far."""
    desired_instances: int | None = None
    new_weight: float | None = None
    message: str | None = None


def rollout_of(described: Mapping[str, Any]) -> Rollout | None:
    """The rollout DescribeEndpoint's answer shows; None when no update is under way."""
    pending = described.get("PendingDeploymentSummary")
    if not pending:
        return None
    variants = pending.get("ProductionVariants") or [{}]
    variant = variants[0]
    statuses = variant.get("VariantStatus") or []
    latest: Mapping[str, Any] = max(statuses, key=lambda s: str(s.get("StartTime", "")), default={})
    phase = str(latest.get("Status") or described.get("EndpointStatus") or "Updating")
    if described.get("EndpointStatus") == "RollingBack":
        phase = "RollingBack"
    return Rollout(
        config_name=str(pending["EndpointConfigName"]),
        phase=phase,
        new_instances=variant.get("CurrentInstanceCount"),
        desired_instances=variant.get("DesiredInstanceCount"),
        new_weight=variant.get("CurrentWeight"),
        message=latest.get("StatusMessage"),
    )


def describe_rollout(rollout: Rollout) -> str:
    """The rollout as a person reads it: phase and how much of the new fleet takes traffic."""
    parts = [f"rollout of {rollout.config_name}: {rollout.phase}"]
    if rollout.new_instances is not None and rollout.desired_instances:
        parts.append(
            f"{rollout.new_instances} of {rollout.desired_instances} new instances take traffic"
        )
    if rollout.message:
        parts.append(rollout.message)
    return ", ".join(parts)


def is_alarm_rollback(failure_reason: str | None) -> bool:
    """Whether a failed update's FailureReason says an auto-rollback alarm rolled it back.

    SageMaker writes the alarm into the reason; a capacity or image failure names none.
    """
    return failure_reason is not None and "alarm" in failure_reason.lower()
