"""Every condition and event reason has one event type (Warning for failures, Normal for
progress), and a pass posts Warning events only for failures it newly reports."""

from __future__ import annotations

from mme_operator.api import (
    EVENT_TYPES,
    ConditionStatus,
    ConditionType,
    EventReason,
    EventType,
    ModelEndpointStatus,
    Reason,
    event_type,
)
from mme_operator.reconcile.events import failure_events
from mme_operator.reconcile.status import set_condition

FAILURES = {
    Reason.INVALID_SPEC,
    Reason.SOURCE_ERROR,
    Reason.LOAD_FAILED,
    Reason.WARM_UP_FAILED,
    Reason.AWS_ERROR,
    Reason.ACCESS_DENIED,
    Reason.NOT_OWNED,
    Reason.DOES_NOT_FIT,
    Reason.ARTIFACT_CONFLICT,
    Reason.BUCKET_MISSING,
    Reason.ENDPOINT_FAILED,
    Reason.UPDATE_FAILED,
    Reason.IDENTITY_CHANGED,
}


def test_every_reason_constant_has_an_event_type() -> None:
    constants = {r.value for r in Reason} | {r.value for r in EventReason}
    assert constants == set(EVENT_TYPES)
    assert {r for r in FAILURES if event_type(r) is not EventType.WARNING} == set()
    progress = {Reason.CREATING, Reason.IN_SERVICE, Reason.LOADED, EventReason.UPLOADED}
    assert {event_type(r) for r in progress} == {EventType.NORMAL}


def status(*conditions: tuple[ConditionType, ConditionStatus, Reason, str]) -> ModelEndpointStatus:
    listed = []
    for condition in conditions:
        listed = set_condition(listed, *condition, 1)
    return ModelEndpointStatus(conditions=listed)


def test_a_new_failure_is_one_warning_and_the_same_failure_again_none() -> None:
    failed = status(
        (ConditionType.SPEC_VALID, ConditionStatus.FALSE, Reason.INVALID_SPEC, "x: bad"),
        (
            ConditionType.READY,
            ConditionStatus.FALSE,
            Reason.INVALID_SPEC,
            "the spec is invalid; fix it and apply again: x: bad",
        ),
        (ConditionType.CAPACITY_FITS, ConditionStatus.FALSE, Reason.DOES_NOT_FIT, "too big"),
        (ConditionType.ENDPOINT_READY, ConditionStatus.FALSE, Reason.CREATING, "creating"),
    )
    assert failure_events(None, failed) == [
        (Reason.INVALID_SPEC, "x: bad"),
        (Reason.DOES_NOT_FIT, "too big"),
    ]
    assert failure_events(failed, failed) == []
    # A reason a step of the pass already told is not told twice.
    assert failure_events(None, failed, told={Reason.INVALID_SPEC}) == [
        (Reason.DOES_NOT_FIT, "too big")
    ]
