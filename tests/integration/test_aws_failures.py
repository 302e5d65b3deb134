"""A permission the operator's IAM role lacks: Ready names it, the spec stays valid, and once
the role is granted the endpoint comes up by itself, without anyone touching the resource."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.integration.conftest import World, condition, eventually

pytestmark = pytest.mark.settings(drift_check_interval_seconds=1)


def denied(action: str) -> str:
    """What AWS answers a role without ``action`` (the shape of its message)."""
    return (
        "User: arn:aws:sts::123456789012:assumed-role/mme-operator/operator-pod is not "
        f"authorized to perform: {action} on resource: "
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/* because no identity-based "
        f"policy allows the {action} action"
    )


def reason(obj: dict[str, Any]) -> str | None:
    return condition(obj, "Ready").get("reason")


async def access_denied(world: World, name: str) -> dict[str, Any]:
    """``name`` once its Ready is False with reason AccessDenied."""
    return await world.wait_for(
        name, lambda obj: reason(obj) == "AccessDenied", "Ready=False AccessDenied"
    )


async def retries(world: World, operation: str, count: int) -> None:
    """Wait until ``operation`` was called ``count`` more times (faulted calls count)."""
    start = world.calls[operation]

    async def called() -> bool:
        return world.calls[operation] >= start + count

    await eventually(called, f"{count} more {operation} calls", timeout=20)


async def test_a_denied_read_is_access_denied_and_heals_once_granted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.env.aws.faults.error(
        "AccessDeniedException", denied("sagemaker:DescribeEndpoint"), operations="DescribeEndpoint"
    )
    doc = world.manifest("locked", [await world.onnx_model("bert")])
    await world.apply(doc)

    refused = await access_denied(world, "locked")
    ready = condition(refused, "Ready")
    assert ready["status"] == "False"
    assert ready["message"].startswith(
        "observing AWS: DescribeEndpoint failed: the operator's IAM role lacks "
        "sagemaker:DescribeEndpoint: User: "
    )
    assert ready["message"].endswith(
        "; tried again every 1s, or at once on any change to the ModelEndpoint "
        "(an annotation will do)"
    )
    # The role is at fault, not the spec.
    assert condition(refused, "SpecValid")["status"] == "True"
    assert refused["status"]["phase"] == "Failed"
    # Observing stopped the pass: nothing was created or uploaded.
    assert world.calls["CreateEndpoint"] == 0
    assert await world.keys("mme/locked/") == []

    # The drift timer tries again every interval; a retry that fails the same way writes
    # nothing and posts no event.
    await retries(world, "DescribeEndpoint", 1)
    before = await world.env.get("locked")
    events_before = await world.events("locked")
    await retries(world, "DescribeEndpoint", 2)
    after = await world.env.get("locked")
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["status"] == before["status"]
    assert len(await world.events("locked")) == len(events_before)

    # Granted: the next tick reconciles, and the endpoint comes up, the resource untouched.
    world.env.aws.faults.reset()
    healed = await world.ready("locked")
    assert healed["metadata"]["generation"] == refused["metadata"]["generation"]
    assert (
        healed["metadata"].get("annotations", {}).keys()
        == refused["metadata"].get("annotations", {}).keys()
    )
    assert reason(healed) == "Reconciled"
    assert "tried again" not in (healed["status"].get("message") or "")
    assert world.calls["CreateEndpoint"] == 1

    # One line per failure, never a traceback.
    operator_records = [r for r in caplog.records if r.name.startswith(("mme_operator", "kopf"))]
    assert not [r for r in operator_records if r.exc_info], "a traceback was logged"
    refusals = [
        r
        for r in operator_records
        if r.levelno >= logging.WARNING and "sagemaker:DescribeEndpoint" in r.getMessage()
    ]
    assert refusals and all("\n" not in r.getMessage() for r in refusals)


async def test_a_denied_scaling_read_names_application_autoscaling_and_heals(
    world: World,
) -> None:
    # The endpoint exists and serves; then the role loses DescribeScalableTargets.
    doc = world.manifest("scaled", [await world.onnx_model("bert")])
    await world.apply(doc)
    first = await world.ready("scaled")

    world.env.aws.faults.error(
        "AccessDeniedException",
        denied("application-autoscaling:DescribeScalableTargets"),
        operations="DescribeScalableTargets",
        service="application-autoscaling",
    )
    # A change to the spec makes the next pass observe scaling (and be refused).
    doc["spec"]["instanceCount"] = 2
    await world.apply(doc)
    refused = await access_denied(world, "scaled")
    message = condition(refused, "Ready")["message"]
    assert "DescribeScalableTargets failed" in message
    assert "lacks application-autoscaling:DescribeScalableTargets" in message
    assert condition(refused, "SpecValid")["status"] == "True"

    world.env.aws.faults.reset()
    healed = await world.wait_for(
        "scaled",
        lambda obj: (
            reason(obj) == "Reconciled"
            and obj["status"].get("endpointConfigName") != first["status"]["endpointConfigName"]
        ),
        "Ready on the new config without another change",
    )
    assert healed["metadata"]["generation"] == refused["metadata"]["generation"]


async def test_a_denied_step_heals_once_granted(world: World) -> None:
    world.env.aws.faults.error(
        "AccessDeniedException", denied("sagemaker:CreateEndpoint"), operations="CreateEndpoint"
    )
    await world.apply(world.manifest("barred", [await world.onnx_model("bert")]))
    refused = await access_denied(world, "barred")
    message = condition(refused, "Ready")["message"]
    assert "lacks sagemaker:CreateEndpoint" in message
    assert "tried again every 1s" in message
    assert condition(refused, "SpecValid")["status"] == "True"
    assert refused["status"]["phase"] == "Failed"

    world.env.aws.faults.reset()
    healed = await world.ready("barred")
    assert healed["metadata"]["generation"] == refused["metadata"]["generation"]
    # The model and config of the refused pass are reused, not created twice.
    assert world.calls["CreateModel"] == 1
    assert world.calls["CreateEndpointConfig"] == 1
