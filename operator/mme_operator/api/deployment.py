"""The rules between the fields of ``spec.deploymentConfig`` that SageMaker enforces.

What one field's schema says (ranges, enums) is in :mod:`mme_operator.api.spec`; here are
the rules that span fields or depend on the instance count, each as SageMaker states it:

- ``blueGreenUpdatePolicy`` and ``rollingUpdatePolicy`` exclude each other (a deployment is
  one or the other; SageMaker docs: "Deployment guardrails").
- ``CANARY`` needs ``canarySize`` of at most 50% of the variant's instances; ``LINEAR``
  needs ``linearStepSize`` of 10-50% (API: TrafficRoutingConfig). A size the routing type
  does not use is refused (the local SageMaker refuses it too, at least as strict as AWS).
- ``rollingUpdatePolicy.maximumBatchSize`` is 5-50% of the variant's instances
  (API: RollingUpdatePolicy). Rolling excludes multi-variant endpoints ("Exclusions"): the
  operator's endpoints have one variant, so that one always holds.
- ``CAPACITY_PERCENT`` values are percentages: at most 100.

The instance count is ``spec.instanceCount``; with autoscaling the live count may differ,
and SageMaker checks the live one when the update starts.
"""

from __future__ import annotations

from mme_operator.api.spec import (
    CapacitySizeSpec,
    CapacitySizeType,
    DeploymentConfigSpec,
    TrafficRoutingType,
)

CANARY_MAX_PERCENT = 50
LINEAR_PERCENT = (10, 50)
ROLLING_PERCENT = (5, 50)


def _percent_of(size: CapacitySizeSpec, instances: int) -> float:
    if size.type == CapacitySizeType.CAPACITY_PERCENT:
        return float(size.value)
    return 100.0 * size.value / instances


def _size_problem(
    size: CapacitySizeSpec, instances: int, low: float, high: float, what: str
) -> str | None:
    if size.type == CapacitySizeType.CAPACITY_PERCENT and size.value > 100:
        return f"{size.value} percent: CAPACITY_PERCENT is at most 100"
    percent = _percent_of(size, instances)
    if low <= percent <= high:
        return None
    bounds = f"at most {high:g}%" if low == 0 else f"{low:g}-{high:g}%"
    shown = (
        f"{size.value}%"
        if size.type == CapacitySizeType.CAPACITY_PERCENT
        else f"{size.value} of {instances} instances ({percent:.0f}%)"
    )
    return f"{shown}: SageMaker requires the {what} to be {bounds} of the variant's instances"


def deployment_config_problems(
    config: DeploymentConfigSpec, instances: int, root: str
) -> list[tuple[str, str]]:
    """(field path, message) of each rule ``config`` breaks for a fleet of ``instances``."""
    problems: list[tuple[str, str]] = []
    blue_green, rolling = config.blue_green_update_policy, config.rolling_update_policy
    if blue_green is not None and rolling is not None:
        problems.append((root, "set at most one of blueGreenUpdatePolicy or rollingUpdatePolicy"))
    if blue_green is not None:
        at = f"{root}.blueGreenUpdatePolicy.trafficRoutingConfiguration"
        routing = blue_green.traffic_routing_configuration
        wanted = {
            TrafficRoutingType.CANARY: "canarySize",
            TrafficRoutingType.LINEAR: "linearStepSize",
        }.get(routing.type)
        for name, size in (
            ("canarySize", routing.canary_size),
            ("linearStepSize", routing.linear_step_size),
        ):
            if size is not None and name != wanted:
                problems.append(
                    (f"{at}.{name}", f"only used with type {_type_using(name)}; remove it")
                )
        if (
            wanted is not None
            and (routing.canary_size if wanted == "canarySize" else routing.linear_step_size)
            is None
        ):
            problems.append((f"{at}.{wanted}", f"type {routing.type} needs {wanted}"))
        if routing.type == TrafficRoutingType.CANARY and routing.canary_size is not None:
            why = _size_problem(routing.canary_size, instances, 0, CANARY_MAX_PERCENT, "canary")
            if why:
                problems.append((f"{at}.canarySize", why))
        if routing.type == TrafficRoutingType.LINEAR and routing.linear_step_size is not None:
            why = _size_problem(routing.linear_step_size, instances, *LINEAR_PERCENT, "linear step")
            if why:
                problems.append((f"{at}.linearStepSize", why))
    if rolling is not None:
        at = f"{root}.rollingUpdatePolicy"
        why = _size_problem(rolling.maximum_batch_size, instances, *ROLLING_PERCENT, "batch")
        if why:
            problems.append((f"{at}.maximumBatchSize", why))
        rollback = rolling.rollback_maximum_batch_size
        if (
            rollback is not None
            and rollback.type == CapacitySizeType.CAPACITY_PERCENT
            and rollback.value > 100
        ):
            problems.append(
                (f"{at}.rollbackMaximumBatchSize", f"{rollback.value} percent: at most 100")
            )
    return problems


def _type_using(size_field: str) -> str:
    return TrafficRoutingType.CANARY if size_field == "canarySize" else TrafficRoutingType.LINEAR
