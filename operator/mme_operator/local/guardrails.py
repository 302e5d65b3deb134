"""Deployment guardrails in the local SageMaker: what UpdateEndpoint refuses, and the rollout.

An update with a ``DeploymentConfig`` runs as SageMaker documents it ("Deployment
guardrails"): the new (green) fleet is provisioned, then traffic moves to it in steps,
each followed by a baking period of ``WaitIntervalInSeconds`` while the auto-rollback
alarms are watched:

- blue/green ``ALL_AT_ONCE``: all traffic, then one (final) baking period;
- ``CANARY``: the canary's instances, a baking period, then the rest and a final one;
- ``LINEAR``: ``LinearStepSize`` more instances per step, each baked;
- rolling: batches of ``MaximumBatchSize``, each provisioned then baked;
- blue/green ends with ``TerminationWaitInSeconds`` before the old fleet goes.

An alarm in ``ALARM`` while traffic is on the new fleet rolls the update back: the
endpoint is ``RollingBack``, then ``InService`` on its old config with ``FailureReason``
naming the alarm. ``MaximumExecutionTimeoutInSeconds`` passed rolls it back too.

Ranges come from botocore's sagemaker service model (botocore checks only ``min`` on the
client, so the service refuses the rest); the sizes relative to the fleet from the API
reference (TrafficRoutingConfig: canary <= 50%, linear step 10-50%; RollingUpdatePolicy:
batch 5-50%); the exclusions from "Deployment guardrails: Exclusions" (rolling: no
multi-variant endpoints; both: the new config keeps the variant names). Two checks are
this stand-in's own, stricter than documented (a stand-in may refuse more, never less):
every alarm must exist in CloudWatch, and a size the routing type does not use is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AlarmState = Callable[[str, str], str | None]
"""(region, alarm name) -> the alarm's state (OK, ALARM, INSUFFICIENT_DATA); None: no such alarm."""

WAIT_INTERVAL = (0, 3600)
TERMINATION_WAIT = (0, 3600)
EXECUTION_TIMEOUT = (600, 28800)
ALARMS = (1, 10)
ALARM_NAME_MAX = 255


@dataclass(frozen=True)
class Step:
    """One stage of a rollout: what the new fleet's variant shows from ``start`` to ``end``."""

    start: float
    end: float
    status: str
    """VariantStatus: Creating, Baking or Deleting (the old fleet's termination wait)."""
    new_instances: int
    """Instances of the new fleet taking traffic."""
    message: str


@dataclass
class Rollout:
    """The stages of one guarded update, and its rollback once an alarm goes off."""

    steps: list[Step]
    instances: int
    alarms: list[str]
    replaces_in_place: bool
    """Linear and rolling take old instances out as new ones take traffic; canary does not."""
    timeout_at: float | None = None
    rollback_reason: str | None = None
    rollback_started: float | None = None
    checked_at: float = 0.0
    history: list[str] = field(default_factory=list)

    @property
    def done_at(self) -> float:
        return self.steps[-1].end

    @property
    def watched_from(self) -> float:
        """When traffic first reaches the new fleet: alarms count from then on."""
        return next((s.start for s in self.steps if s.new_instances > 0), self.done_at)

    def step_at(self, now: float) -> Step:
        return next((s for s in self.steps if now < s.end), self.steps[-1])


def _capacity(size: dict[str, Any], instances: int) -> int:
    value = int(size["Value"])
    if size["Type"] == "CAPACITY_PERCENT":
        return max(1, math.ceil(instances * value / 100))
    return value


def plan_rollout(
    config: dict[str, Any], instances: int, now: float, provision_seconds: float
) -> Rollout:
    """The stages of an update with ``config`` (a valid DeploymentConfig) to ``instances``."""
    alarms = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    rolling = config.get("RollingUpdatePolicy")
    steps: list[Step] = []
    at = now

    def add(seconds: float, status: str, new: int, message: str) -> None:
        nonlocal at
        steps.append(Step(at, at + seconds, status, new, message))
        at += seconds

    if rolling is not None:
        batch = _capacity(rolling["MaximumBatchSize"], instances)
        wait = int(rolling["WaitIntervalInSeconds"])
        done = 0
        while done < instances:
            before, done = done, min(instances, done + batch)
            add(provision_seconds, "Creating", before, f"provisioning a batch of {done - before}")
            add(wait, "Baking", done, f"baking {done} of {instances} new instances")
        timeout = rolling.get("MaximumExecutionTimeoutInSeconds")
        return Rollout(steps, instances, alarms, True, _deadline(now, timeout))
    blue_green = config.get("BlueGreenUpdatePolicy") or {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    }
    routing = blue_green["TrafficRoutingConfiguration"]
    wait = int(routing["WaitIntervalInSeconds"])
    add(provision_seconds, "Creating", 0, f"provisioning {instances} new instances")
    if routing["Type"] == "CANARY":
        canary = _capacity(routing["CanarySize"], instances)
        add(wait, "Baking", canary, f"baking the canary: {canary} of {instances} new instances")
    elif routing["Type"] == "LINEAR":
        step = _capacity(routing["LinearStepSize"], instances)
        for new in range(step, instances, step):
            add(wait, "Baking", new, f"baking linear step: {new} of {instances} new instances")
    add(wait, "Baking", instances, f"final baking: all {instances} new instances take traffic")
    termination = int(blue_green.get("TerminationWaitInSeconds", 0))
    if termination:
        add(termination, "Deleting", instances, "waiting to terminate the old fleet")
    timeout = blue_green.get("MaximumExecutionTimeoutInSeconds")
    linear = routing["Type"] == "LINEAR"
    return Rollout(steps, instances, alarms, linear, _deadline(now, timeout))


def _deadline(now: float, timeout: Any) -> float | None:
    return now + int(timeout) if timeout is not None else None


def tripped_alarms(rollout: Rollout, region: str, now: float, alarm_state: AlarmState) -> list[str]:
    """The rollout's alarms in ALARM, if traffic reached the new fleet since the last look."""
    looked, rollout.checked_at = rollout.checked_at, now
    if rollout.rollback_reason is not None or now < rollout.watched_from:
        return []
    if looked >= rollout.done_at:
        return []
    return [name for name in rollout.alarms if alarm_state(region, name) == "ALARM"]


def rollback_reason(alarms: list[str], rollout: Rollout, now: float) -> str:
    """FailureReason of an update rolled back by ``alarms`` (timed out when there are none)."""
    if alarms:
        step = rollout.step_at(now)
        return (
            f"Deployment rolled back: CloudWatch alarm(s) [{', '.join(alarms)}] went into "
            f"ALARM state while {step.message}."
        )
    return (
        "Deployment rolled back: it did not complete within MaximumExecutionTimeoutInSeconds "
        f"({int((rollout.timeout_at or now) - rollout.steps[0].start)} s)."
    )


def _range_error(value: Any, at: str, bounds: tuple[int, int]) -> str | None:
    low, high = bounds
    if value is None:
        return None
    if int(value) < low:
        return (
            f"Value '{value}' at '{at}' failed to satisfy constraint: Member must have value "
            f"greater than or equal to {low}"
        )
    if int(value) > high:
        return (
            f"Value '{value}' at '{at}' failed to satisfy constraint: Member must have value "
            f"less than or equal to {high}"
        )
    return None


def member_errors(config: dict[str, Any]) -> list[str]:
    """Members of a DeploymentConfig outside the service model's ranges."""
    errors: list[str] = []
    blue_green = config.get("BlueGreenUpdatePolicy")
    rolling = config.get("RollingUpdatePolicy")
    checks: list[tuple[Any, str, tuple[int, int]]] = []
    if blue_green is not None:
        at = "deploymentConfig.blueGreenUpdatePolicy"
        routing = blue_green.get("TrafficRoutingConfiguration", {})
        checks += [
            (
                routing.get("WaitIntervalInSeconds"),
                f"{at}.trafficRoutingConfiguration.waitIntervalInSeconds",
                WAIT_INTERVAL,
            ),
            (
                blue_green.get("TerminationWaitInSeconds"),
                f"{at}.terminationWaitInSeconds",
                TERMINATION_WAIT,
            ),
            (
                blue_green.get("MaximumExecutionTimeoutInSeconds"),
                f"{at}.maximumExecutionTimeoutInSeconds",
                EXECUTION_TIMEOUT,
            ),
        ]
        if routing.get("Type") not in ("ALL_AT_ONCE", "CANARY", "LINEAR"):
            errors.append(
                f"Value '{routing.get('Type')}' at '{at}.trafficRoutingConfiguration.type' failed "
                "to satisfy constraint: Member must satisfy enum value set: "
                "[ALL_AT_ONCE, CANARY, LINEAR]"
            )
    if rolling is not None:
        at = "deploymentConfig.rollingUpdatePolicy"
        checks += [
            (rolling.get("WaitIntervalInSeconds"), f"{at}.waitIntervalInSeconds", WAIT_INTERVAL),
            (
                rolling.get("MaximumExecutionTimeoutInSeconds"),
                f"{at}.maximumExecutionTimeoutInSeconds",
                EXECUTION_TIMEOUT,
            ),
        ]
    alarms = config.get("AutoRollbackConfiguration", {}).get("Alarms")
    if alarms is not None and not ALARMS[0] <= len(alarms) <= ALARMS[1]:
        errors.append(
            f"Value '{alarms}' at 'deploymentConfig.autoRollbackConfiguration.alarms' failed to "
            f"satisfy constraint: Member must have length between {ALARMS[0]} and {ALARMS[1]}"
        )
    for alarm in alarms or []:
        name = str(alarm.get("AlarmName", ""))
        if not 1 <= len(name) <= ALARM_NAME_MAX or not name.strip():
            errors.append(
                f"Value '{name}' at 'deploymentConfig.autoRollbackConfiguration.alarms.member."
                f"alarmName' failed to satisfy constraint: Member must have length between 1 "
                f"and {ALARM_NAME_MAX} and not be blank"
            )
    errors += [e for e in (_range_error(*check) for check in checks) if e]
    return errors


def _percent(size: dict[str, Any], instances: int) -> float:
    if size.get("Type") == "CAPACITY_PERCENT":
        return float(size["Value"])
    return 100.0 * int(size["Value"]) / instances


def deployment_errors(
    config: dict[str, Any],
    old_variants: list[dict[str, Any]],
    new_variants: list[dict[str, Any]],
    instances: int,
    alarm_exists: Callable[[str], bool],
) -> list[str]:
    """Why SageMaker refuses UpdateEndpoint with ``config`` (ValidationException messages)."""
    blue_green = config.get("BlueGreenUpdatePolicy")
    rolling = config.get("RollingUpdatePolicy")
    errors: list[str] = []
    if blue_green is not None and rolling is not None:
        errors.append(
            "DeploymentConfig may specify BlueGreenUpdatePolicy or RollingUpdatePolicy, not both."
        )
    if (blue_green is not None or rolling is not None) and sorted(
        v["VariantName"] for v in old_variants
    ) != sorted(v["VariantName"] for v in new_variants):
        errors.append(
            "A blue/green or rolling deployment needs the new endpoint configuration to keep "
            "the variant names of the current one."
        )
    if blue_green is not None:
        routing = blue_green.get("TrafficRoutingConfiguration", {})
        kind = routing.get("Type")
        sizes = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}
        for member in ("CanarySize", "LinearStepSize"):
            if member in routing and sizes.get(str(kind)) != member:
                errors.append(f"{member} is not supported with traffic routing type {kind}.")
        wanted = sizes.get(str(kind))
        if wanted is not None and wanted not in routing:
            errors.append(f"Traffic routing type {kind} requires {wanted}.")
        elif kind == "CANARY" and _percent(routing["CanarySize"], instances) > 50:
            errors.append(
                f"CanarySize must be less than or equal to 50% of the variant's total instance "
                f"count ({instances})."
            )
        elif kind == "LINEAR" and not 10 <= _percent(routing["LinearStepSize"], instances) <= 50:
            errors.append(
                f"LinearStepSize must be 10-50% of the variant's total instance count ({instances})."
            )
    if rolling is not None:
        if len(new_variants) > 1:
            errors.append("RollingUpdatePolicy is not supported for multi-variant endpoints.")
        if not 5 <= _percent(rolling["MaximumBatchSize"], instances) <= 50:
            errors.append(
                f"MaximumBatchSize must be between 5% and 50% of the variant's total instance "
                f"count ({instances})."
            )
    for alarm in config.get("AutoRollbackConfiguration", {}).get("Alarms", []):
        if not alarm_exists(str(alarm.get("AlarmName", ""))):
            errors.append(f"CloudWatch alarm {alarm.get('AlarmName')!r} does not exist.")
    return errors
