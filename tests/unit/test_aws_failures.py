"""A terminal AWS error is the role's fault, not the spec's; the rule of what is tried again (pure)."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
from mme_operator.api import (
    Condition,
    ConditionStatus,
    ConditionType,
    ModelEndpointStatus,
    Phase,
    Reason,
)
from mme_operator.reconcile import failed_retry_due
from mme_operator.reconcile.apply import terminal_reason
from mme_operator.reconcile.status import (
    RETRIED_EVERY_DRIFT_INTERVAL,
    aws_failed_status,
    invalid_status,
    retried_by_itself,
    with_retry_note,
)
from mme_operator.sagemaker.errors import describe_error

DENIED_MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/mme-operator/pod is not authorized to "
    "perform: sagemaker:DescribeEndpoint on resource: "
    "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mme-ml-bert"
)


def client_error(code: str, message: str, operation: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        operation,
    )


def condition(status: ModelEndpointStatus, type_: ConditionType) -> Condition:
    [found] = [c for c in status.conditions or [] if c.type == type_]
    return found


def denied_status(previous: ModelEndpointStatus | None = None) -> ModelEndpointStatus:
    exc = client_error("AccessDeniedException", DENIED_MESSAGE, "DescribeEndpoint")
    message = f"observing AWS: DescribeEndpoint failed: {describe_error(exc)}"
    return aws_failed_status(previous, 3, terminal_reason(exc), message, spec_valid=True)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("AccessDeniedException", Reason.ACCESS_DENIED),
        ("AccessDenied", Reason.ACCESS_DENIED),
        ("UnauthorizedOperation", Reason.ACCESS_DENIED),
        ("AuthorizationError", Reason.ACCESS_DENIED),
        ("UnrecognizedClientException", Reason.ACCESS_DENIED),
        ("ResourceLimitExceeded", Reason.AWS_ERROR),
        ("ValidationException", Reason.AWS_ERROR),
        ("KMS.DisabledException", Reason.AWS_ERROR),
    ],
)
def test_terminal_reason_is_access_denied_for_a_missing_permission(
    code: str, reason: Reason
) -> None:
    assert terminal_reason(client_error(code, "no", "DescribeEndpoint")) == reason


def test_an_observation_refused_by_iam_is_not_an_invalid_spec() -> None:
    # The spec was invalid before and is fixed now; then AWS refuses a read.
    before = invalid_status(None, 2, ["spec.models: must not be empty"])
    status = denied_status(before)

    assert status.phase == Phase.FAILED
    spec_valid = condition(status, ConditionType.SPEC_VALID)
    assert (spec_valid.status, spec_valid.reason) == (ConditionStatus.TRUE, Reason.RECONCILED)
    ready = condition(status, ConditionType.READY)
    assert (ready.status, ready.reason) == (ConditionStatus.FALSE, Reason.ACCESS_DENIED)
    assert ready.message.startswith(
        "observing AWS: DescribeEndpoint failed: the operator's IAM role lacks "
        "sagemaker:DescribeEndpoint: User: "
    )
    assert "invalid" not in ready.message
    assert status.observed_generation == 3


def test_spec_valid_is_left_as_it_was_when_the_spec_did_not_validate_yet() -> None:
    before = invalid_status(None, 2, ["spec.models: must not be empty"])
    status = aws_failed_status(before, 2, Reason.AWS_ERROR, "boom", spec_valid=False)
    assert condition(status, ConditionType.SPEC_VALID) == condition(
        before, ConditionType.SPEC_VALID
    )
    assert condition(status, ConditionType.READY).reason == Reason.AWS_ERROR


def failed(reason: Reason | str, phase: Phase = Phase.FAILED) -> ModelEndpointStatus:
    ready = Condition(type=ConditionType.READY, status=ConditionStatus.FALSE, reason=str(reason))
    return ModelEndpointStatus(phase=phase, conditions=[ready], message="why")


@pytest.mark.parametrize(
    ("reason", "retried"),
    [
        # Outside the resource: the IAM role, a quota, SageMaker's state.
        (Reason.ACCESS_DENIED, True),
        (Reason.AWS_ERROR, True),
        (Reason.ENDPOINT_FAILED, True),
        # Only the user's change helps, and that change is a pass of its own.
        (Reason.INVALID_SPEC, False),
        (Reason.IDENTITY_CHANGED, False),
        (Reason.NOT_OWNED, False),
        (Reason.UPDATE_FAILED, False),
        # Failed models: the drift check looks at them already.
        (Reason.SOURCE_ERROR, False),
        (Reason.ARTIFACT_CONFLICT, False),
    ],
)
def test_the_rule_per_reason(reason: Reason, retried: bool) -> None:
    assert retried_by_itself(failed(reason)) is retried


def test_only_a_failed_phase_is_retried_by_the_timer() -> None:
    # A pass that stopped on a retryable error or a wait comes back on kopf's own delay.
    for phase in (Phase.PENDING, Phase.SYNCING, Phase.CREATING, Phase.UPDATING, Phase.READY):
        assert not retried_by_itself(failed(Reason.ACCESS_DENIED, phase))
    assert not retried_by_itself(None)
    assert not retried_by_itself(ModelEndpointStatus(phase=Phase.FAILED))
    assert {str(r) for r in Reason} >= RETRIED_EVERY_DRIFT_INTERVAL


def test_the_retry_note_says_when_and_is_the_same_on_every_pass() -> None:
    first = with_retry_note(denied_status(), 300)
    ready = condition(first, ConditionType.READY)
    note = (
        "; tried again every 300s, or at once on any change to the ModelEndpoint "
        "(an annotation will do)"
    )
    assert ready.message == (
        "observing AWS: DescribeEndpoint failed: the operator's IAM role lacks "
        f"sagemaker:DescribeEndpoint: {DENIED_MESSAGE}{note}"
    )
    assert first.message is not None and first.message.endswith(note)

    # The next pass fails the same way: the same status, transition times included.
    second = with_retry_note(denied_status(first), 300)
    assert second == first


def test_no_note_where_only_the_user_can_help() -> None:
    invalid = invalid_status(None, 1, ["spec.region: unknown"])
    assert with_retry_note(invalid, 300) == invalid


def body(status: ModelEndpointStatus) -> dict[str, Any]:
    return {"metadata": {"name": "bert"}, "status": status.model_dump(by_alias=True, mode="json")}


def test_the_timer_is_told_why_it_tries_again() -> None:
    status = with_retry_note(denied_status(), 300)
    due = failed_retry_due(body(status))
    assert due is not None
    assert due.startswith("AccessDenied: observing AWS: DescribeEndpoint failed: ")
    assert failed_retry_due(body(invalid_status(None, 1, ["spec.region: unknown"]))) is None
    assert failed_retry_due({"metadata": {"name": "new"}}) is None
