"""AutoscalingReady, computed from one pass's desired / observed / plan / result (pure)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import botocore.exceptions
from mme_operator.api import (
    ConditionStatus,
    ConditionType,
    ModelEndpointStatus,
    Reason,
    parse_resource,
)
from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile import build_desired, plan_reconcile
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.apply import ApplyError, ApplyResult
from mme_operator.reconcile.desired import DesiredState
from mme_operator.reconcile.observe import ObservedState
from mme_operator.reconcile.status import reconciled_status
from mme_operator.sagemaker import EndpointState
from mme_operator.sagemaker.autoscaling import ObservedScaling
from mme_operator.sagemaker.errors import describe_error

UID = "5c1e-uid"
AUTOSCALING = {"minInstances": 1, "maxInstances": 4, "targetInvocationsPerInstance": 100}
DOC: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "scaled", "namespace": "ml", "uid": UID, "generation": 2},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models"},
        "instanceType": "ml.g5.xlarge",
        "instanceCount": 2,
        "models": [
            {"name": "bert", "source": "s3://src/bert.onnx", "platform": "onnxruntime_onnx"}
        ],
    },
}
CONFIGURED_MESSAGE = "min 1, max 4 instances, target 100 invocations per instance per minute"
# What Application Auto Scaling answers a role without the action (its shape, over the wire).
DENIED = botocore.exceptions.ClientError(
    {
        "Error": {
            "Code": "AccessDeniedException",
            "Message": "User: arn:aws:sts::123456789012:assumed-role/mme-operator/pod is not "
            "authorized to perform: application-autoscaling:RegisterScalableTarget on resource: "
            "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/*",
        },
        "ResponseMetadata": {"HTTPStatusCode": 400},
    },
    "RegisterScalableTarget",
)


def desired_for(**spec: Any) -> DesiredState:
    doc = copy.deepcopy(DOC)
    doc["spec"].update(spec)
    # The load check (one invocation per new TargetModel) is another file's story.
    return build_desired(parse_resource(doc), {"bert": "etag-1"}, load_check=False)


def registered(min_: int = 1, max_: int = 4, target: float | None = 100.0) -> ObservedScaling:
    return ObservedScaling(
        min_capacity=min_,
        max_capacity=max_,
        target_invocations_per_instance=target,
        scale_in_cooldown_seconds=300 if target is not None else None,
        scale_out_cooldown_seconds=60 if target is not None else None,
    )


def observed(
    desired: DesiredState,
    *,
    status: str | None = "InService",
    config: str | None = None,
    scaling: ObservedScaling | None = None,
    serving_instance_type: str | None = None,
) -> ObservedState:
    endpoint = None
    if status is not None:
        endpoint = EndpointState(
            name=desired.endpoint_name,
            arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{desired.endpoint_name}",
            status=status,
            config_name=config or desired.sagemaker.endpoint_config.name,
        )
    return ObservedState(
        endpoint=endpoint,
        endpoint_owner_uid=UID if endpoint is not None else None,
        model_exists=endpoint is not None,
        endpoint_config_exists=endpoint is not None,
        archives={
            a.key: StoredArchive(a.key, 10, "sha", UID, a.model_name) for a in desired.archives
        },
        scaling=scaling,
        serving_instance_type=serving_instance_type,
    )


def one_pass(
    desired: DesiredState,
    seen: ObservedState,
    previous: ModelEndpointStatus | None = None,
    *,
    fail: type[p.Action] | None = None,
    error: ApplyError | None = None,
) -> tuple[p.Plan, ModelEndpointStatus]:
    """Plan, 'apply' every step (up to the first of kind ``fail``, which fails), report."""
    plan = plan_reconcile(desired, seen, previous)
    result = ApplyResult()
    for action in plan.actions:
        if fail is not None and isinstance(action, fail):
            assert error is not None
            result.error = ApplyError(error.retryable, error.reason, error.message, action)
            break
        result.done.append(action)
    return plan, reconciled_status(desired, seen, plan, result, previous, {})


def condition(status: ModelEndpointStatus, type_: ConditionType) -> tuple[str, str, str]:
    [found] = [c for c in status.conditions or [] if c.type == type_]
    return found.status, found.reason, found.message


def test_without_spec_autoscaling_it_is_true_disabled_from_the_first_pass() -> None:
    d = desired_for()
    _, status = one_pass(d, observed(d, status=None))

    assert condition(status, ConditionType.AUTOSCALING_READY) == (
        ConditionStatus.TRUE,
        Reason.DISABLED,
        "no spec.autoscaling; the instance count is spec.instanceCount (2)",
    )
    # Ready waits for the endpoint, not for autoscaling.
    assert condition(status, ConditionType.READY)[1] == Reason.CREATING


def test_disabled_autoscaling_leaves_ready_true() -> None:
    d = desired_for()
    plan, status = one_pass(d, observed(d))

    assert plan.actions == ()
    assert condition(status, ConditionType.READY)[0] == ConditionStatus.TRUE
    assert condition(status, ConditionType.AUTOSCALING_READY)[:2] == (
        ConditionStatus.TRUE,
        Reason.DISABLED,
    )


def test_declared_scaling_waits_for_the_endpoint_then_is_configured() -> None:
    d = desired_for(autoscaling=AUTOSCALING)
    _, creating = one_pass(d, observed(d, status=None))
    state, reason, message = condition(creating, ConditionType.AUTOSCALING_READY)
    assert (state, reason) == (ConditionStatus.FALSE, Reason.WAITING_FOR_ENDPOINT)
    assert message == (
        f"{CONFIGURED_MESSAGE}: applied once endpoint {d.endpoint_name} is InService on "
        f"config {d.sagemaker.endpoint_config.name} (now Creating)"
    )

    plan, ready = one_pass(d, observed(d), creating)
    assert [type(a) for a in plan.actions] == [p.ApplyScaling]
    assert condition(ready, ConditionType.AUTOSCALING_READY) == (
        ConditionStatus.TRUE,
        Reason.CONFIGURED,
        CONFIGURED_MESSAGE,
    )
    assert condition(ready, ConditionType.READY)[0] == ConditionStatus.TRUE


def test_a_steady_pass_leaves_the_condition_exactly_as_it_was() -> None:
    d = desired_for(autoscaling=AUTOSCALING)
    _, first = one_pass(d, observed(d, scaling=registered()))
    plan, second = one_pass(d, observed(d, scaling=registered()), first)

    assert plan.actions == ()
    assert second.conditions == first.conditions
    assert condition(second, ConditionType.AUTOSCALING_READY)[1] == Reason.CONFIGURED


def test_registered_scaling_that_differs_from_the_spec_is_applied_again() -> None:
    d = desired_for(autoscaling=AUTOSCALING)
    for drifted in (registered(max_=2), registered(target=None)):  # bounds; policy gone
        plan, status = one_pass(d, observed(d, scaling=drifted))
        assert [type(a) for a in plan.actions] == [p.ApplyScaling]
        assert condition(status, ConditionType.AUTOSCALING_READY)[1] == Reason.CONFIGURED


def test_a_refused_register_says_which_permission_is_missing() -> None:
    d = desired_for(autoscaling=AUTOSCALING)
    denied = ApplyError(
        False, Reason.ACCESS_DENIED, f"apply autoscaling failed: {describe_error(DENIED)}"
    )
    _, status = one_pass(d, observed(d), fail=p.ApplyScaling, error=denied)

    state, reason, message = condition(status, ConditionType.AUTOSCALING_READY)
    assert (state, reason) == (ConditionStatus.FALSE, Reason.ACCESS_DENIED)
    assert "lacks application-autoscaling:RegisterScalableTarget" in message
    # The endpoint itself serves: only the scaling step failed.
    assert condition(status, ConditionType.ENDPOINT_READY)[0] == ConditionStatus.TRUE


def test_a_step_before_the_scaling_that_failed_leaves_it_not_applied() -> None:
    d = desired_for(autoscaling=AUTOSCALING)
    seen = observed(d)
    seen = dataclasses.replace(seen, archives={})  # the archive must go up first
    failed = ApplyError(True, Reason.RETRYING, "upload failed: SlowDown; will retry")
    _, status = one_pass(d, seen, fail=p.UploadArchive, error=failed)

    assert condition(status, ConditionType.AUTOSCALING_READY) == (
        ConditionStatus.FALSE,
        Reason.RETRYING,
        "autoscaling not applied: upload failed: SlowDown; will retry",
    )


def test_removing_spec_autoscaling_removes_it_and_becomes_disabled() -> None:
    d = desired_for()
    plan, status = one_pass(d, observed(d, scaling=registered()))

    assert [type(a) for a in plan.actions] == [p.RemoveScaling]
    assert condition(status, ConditionType.AUTOSCALING_READY)[:2] == (
        ConditionStatus.TRUE,
        Reason.DISABLED,
    )


def test_scaling_left_registered_while_the_endpoint_is_busy_is_not_disabled_yet() -> None:
    d = desired_for()
    _, status = one_pass(d, observed(d, status="Updating", scaling=registered()))

    state, reason, message = condition(status, ConditionType.AUTOSCALING_READY)
    assert (state, reason) == (ConditionStatus.FALSE, Reason.WAITING_FOR_ENDPOINT)
    assert "removed once the endpoint is InService (now Updating)" in message


def test_a_failed_removal_is_reported_with_its_error() -> None:
    d = desired_for()
    error = ApplyError(False, Reason.AWS_ERROR, "remove autoscaling failed: SomeError")
    _, status = one_pass(d, observed(d, scaling=registered()), fail=p.RemoveScaling, error=error)

    assert condition(status, ConditionType.AUTOSCALING_READY) == (
        ConditionStatus.FALSE,
        Reason.AWS_ERROR,
        "remove autoscaling failed: SomeError",
    )


def test_an_instance_type_change_deregisters_and_waits_for_the_update() -> None:
    d = desired_for(autoscaling=AUTOSCALING, instanceType="ml.g5.2xlarge")
    old = desired_for(autoscaling=AUTOSCALING).sagemaker.endpoint_config.name
    seen = observed(d, config=old, scaling=registered(), serving_instance_type="ml.g5.xlarge")
    plan, status = one_pass(d, seen)

    assert [type(a) for a in plan.actions] == [p.RemoveScaling, p.UpdateEndpoint]
    state, reason, message = condition(status, ConditionType.AUTOSCALING_READY)
    assert (state, reason) == (ConditionStatus.FALSE, Reason.WAITING_FOR_ENDPOINT)
    assert message.endswith("(now Updating)")


def test_an_update_that_keeps_the_instance_type_keeps_scaling_configured() -> None:
    d = desired_for(autoscaling=AUTOSCALING, instanceCount=3)
    old = desired_for(autoscaling=AUTOSCALING).sagemaker.endpoint_config.name
    seen = observed(d, config=old, scaling=registered(), serving_instance_type="ml.g5.xlarge")
    plan, status = one_pass(d, seen)

    assert [type(a) for a in plan.actions] == [p.UpdateEndpoint]
    assert condition(status, ConditionType.AUTOSCALING_READY)[1] == Reason.CONFIGURED
