"""Which outcomes of a pass become Kubernetes Warning events (pure).

A pass's steps (an upload, a created resource, a model that failed to load) are told by
the steps themselves; a failure that no step tells (a spec refused before any plan, AWS
refusing an observation, an endpoint another owner holds, models that do not fit) is told
by the condition it sets. Each is posted once, when it appears: a pass that fails the same
way again posts nothing, so a failure retried every interval does not flood the namespace.
"""

from __future__ import annotations

from collections.abc import Iterable

from mme_operator.api import ConditionStatus, EventType, ModelEndpointStatus, event_type


def failure_events(
    previous: ModelEndpointStatus | None,
    current: ModelEndpointStatus,
    told: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(reason, message) of each failure condition ``current`` sets that ``previous`` had not.

    A condition counts when it is False with a reason whose event type is Warning, and its
    reason or message differs from the previous condition of its type. Reasons in ``told``
    (the pass's own Warning steps) and a message already told under the same reason by
    another condition (``Ready`` repeats the failing one's) are left out.
    """
    before = {c.type: c for c in (previous.conditions if previous else None) or []}
    skip = set(told)
    seen: set[tuple[str, str]] = set()
    events = []
    for condition in current.conditions or []:
        if condition.status != ConditionStatus.FALSE:
            continue
        if event_type(condition.reason) is not EventType.WARNING or condition.reason in skip:
            continue
        old = before.get(condition.type)
        if old is not None and (old.status, old.reason, old.message) == (
            condition.status,
            condition.reason,
            condition.message,
        ):
            continue
        key = (condition.reason, _without_retry_note(condition.message))
        if any(key[0] == r and (key[1] in m or m in key[1]) for r, m in seen):
            continue
        seen.add(key)
        events.append((condition.reason, condition.message))
    return events


def _without_retry_note(message: str) -> str:
    return message.split("; tried again every", 1)[0]
