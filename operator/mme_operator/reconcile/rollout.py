"""Endpoint updates under deployment guardrails: the rollout in status, and a rolled-back one.

A rolled-back update (an auto-rollback alarm went off while a step baked) leaves the
endpoint InService on its old config. That is a working endpoint, so ``Ready`` stays True
there, and a failed update at once: ``EndpointReady`` is False with reason ``RolledBack``
(a Warning event) and the config is not applied again until the spec changes or the
retry-update annotation gets a new value: the rule of every failed update (MME-FACTS #12).
"""

from __future__ import annotations

from mme_operator.api import ConditionStatus, ModelEndpointStatus, Reason
from mme_operator.api.status import RolloutStatus
from mme_operator.reconcile.desired import RETRY_UPDATE_ANNOTATION, DesiredState
from mme_operator.reconcile.observe import ObservedState
from mme_operator.sagemaker.deployment import describe_rollout, is_alarm_rollback
from mme_operator.sagemaker.gateway import EndpointState


def rolled_back(status: ModelEndpointStatus, config: str, failure_reason: str | None) -> bool:
    """Whether the failed update to ``config`` was an auto-rollback, not another failure.

    Either its FailureReason names an alarm, or an earlier pass saw the endpoint
    RollingBack from it (the phase SageMaker shows while an alarm's rollback runs).
    """
    seen = status.rollout
    rolling_back = seen is not None and (seen.endpoint_config_name, seen.phase) == (
        config,
        "RollingBack",
    )
    return rolling_back or is_alarm_rollback(failure_reason)


def rolled_back_message(desired: DesiredState, endpoint: EndpointState) -> str:
    """Why an update whose alarm rolled it back is not applied again."""
    name, config = desired.endpoint_name, desired.sagemaker.endpoint_config.name
    return (
        f"updating endpoint {name} to {config} was rolled back by an alarm of "
        f"spec.deploymentConfig.autoRollbackConfiguration; {endpoint.config_name} keeps "
        f"serving: {endpoint.failure_reason}. It is not retried until the spec changes "
        f"(or the annotation {RETRY_UPDATE_ANNOTATION} gets a new value)."
    )


def rolled_back_ready(
    desired: DesiredState, observed: ObservedState, why: str, model_count: int
) -> tuple[ConditionStatus, Reason, str]:
    """``Ready`` of an endpoint whose update was rolled back: True, on the old config."""
    serving = observed.endpoint.config_name if observed.endpoint else "its previous config"
    return (
        ConditionStatus.TRUE,
        Reason.RECONCILED,
        f"{model_count} models served by {desired.endpoint_name} on {serving}; {why}",
    )


def rollout_status(
    observed: ObservedState,
    previous: ModelEndpointStatus | None,
    *,
    started: str | None,
    failed_config: str | None,
    blocked_reason: str | None,
) -> RolloutStatus | None:
    """The last update as this pass sees it: ``started`` (this pass's UpdateEndpoint), its
    phase, or its outcome (``failed_config`` and the plan's ``blocked_reason``)."""
    endpoint = observed.endpoint
    before = previous.rollout if previous else None
    if started is not None:
        return RolloutStatus(endpoint_config_name=started, phase="Started")
    if endpoint is None:
        return before
    if endpoint.rollout is not None:
        rollout = endpoint.rollout
        return RolloutStatus(
            endpoint_config_name=rollout.config_name,
            phase=rollout.phase,
            new_instances=rollout.new_instances,
            desired_instances=rollout.desired_instances,
            message=describe_rollout(rollout),
        )
    if failed_config and blocked_reason in (Reason.ROLLED_BACK, Reason.UPDATE_FAILED):
        return RolloutStatus(
            endpoint_config_name=failed_config,
            phase="RolledBack" if blocked_reason == Reason.ROLLED_BACK else "Failed",
            message=endpoint.failure_reason,
        )
    if (
        before is not None
        and endpoint.status == "InService"
        and endpoint.config_name == before.endpoint_config_name
        and before.phase not in ("RolledBack", "Failed")
    ):
        return before.model_copy(
            update={
                "phase": "Completed",
                "new_instances": endpoint.current_instance_count,
                "desired_instances": endpoint.desired_instance_count,
                "message": f"endpoint serves {endpoint.config_name}",
            }
        )
    return before
