"""Guarded endpoint updates: spec.deploymentConfig goes with UpdateEndpoint, status follows
the rollout step by step, and an update whose CloudWatch alarm goes off while it bakes is
rolled back, reported and not tried again until the spec changes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import World, condition, is_current
from tests.local.conftest import put_ok_alarm

NEW_TYPE = "ml.g5.2xlarge"


async def put_alarm(world: World) -> str:
    """An alarm on the endpoint's 5xx errors in the local CloudWatch, state OK."""
    return await world.aws(put_ok_alarm, cloudwatch=world.env.aws.client("cloudwatch"))


async def set_alarm(world: World, name: str, state: str) -> None:
    cloudwatch = world.env.aws.client("cloudwatch")
    await world.aws(cloudwatch.set_alarm_state, AlarmName=name, StateValue=state, StateReason="t")


def canary(wait: int, alarm: str) -> dict[str, Any]:
    return {
        "blueGreenUpdatePolicy": {
            "trafficRoutingConfiguration": {
                "type": "CANARY",
                "waitIntervalInSeconds": wait,
                "canarySize": {"type": "INSTANCE_COUNT", "value": 1},
            }
        },
        "autoRollbackConfiguration": {"alarms": [{"alarmName": alarm}]},
    }


def new_fleet(described: dict[str, Any] | None) -> tuple[str, int] | None:
    """(VariantStatus, instances taking traffic) of the pending fleet; None when none."""
    pending = (described or {}).get("PendingDeploymentSummary")
    if not pending:
        return None
    [variant] = pending["ProductionVariants"]
    return variant["VariantStatus"][0]["Status"], variant["CurrentInstanceCount"]


async def wait_new_fleet(world: World, endpoint: str, wanted: tuple[str, int]) -> None:
    for _ in range(300):
        if new_fleet(await world.describe("endpoint", endpoint)) == wanted:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the new fleet of {endpoint} never showed {wanted}")


async def test_a_canary_whose_alarm_goes_off_while_baking_is_rolled_back_and_not_retried(
    world: World,
) -> None:
    alarm = await put_alarm(world)
    doc = world.manifest(
        "guarded",
        [await world.onnx_model("bert")],
        instanceCount=2,
        deploymentConfig=canary(60, alarm),
    )
    await world.apply(doc)
    before = await world.ready("guarded")
    name, old_config = before["status"]["endpointName"], before["status"]["endpointConfigName"]

    doc["spec"]["instanceType"] = NEW_TYPE
    await world.apply(doc)
    await wait_new_fleet(world, name, ("Baking", 1))
    baking = await world.wait_for(
        "guarded",
        lambda obj: (obj["status"].get("rollout") or {}).get("phase") == "Baking",
        "status.rollout Baking",
    )
    assert baking["status"]["rollout"]["newInstances"] == 1
    assert "Baking" in condition(baking, "EndpointReady")["message"]
    await set_alarm(world, alarm, "ALARM")

    rolled = await world.wait_for(
        "guarded",
        lambda obj: (
            is_current(obj) and condition(obj, "EndpointReady").get("reason") == "RolledBack"
        ),
        "EndpointReady=False RolledBack",
    )
    assert condition(rolled, "EndpointReady")["status"] == "False"
    assert alarm in condition(rolled, "EndpointReady")["message"]
    # The old config serves every model: the endpoint is Ready there.
    assert condition(rolled, "Ready")["status"] == "True"
    assert rolled["status"]["phase"] == "Ready"
    assert rolled["status"]["endpointConfigName"] == old_config
    assert rolled["status"]["rollout"]["phase"] == "RolledBack"
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", old_config)
    sent = endpoint["LastDeploymentConfig"]
    assert sent["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert sent["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": alarm}]}
    warnings = [e for e in await world.events("guarded") if e["type"] == "Warning"]
    assert any(e["reason"] == "RolledBack" for e in warnings), warnings

    # Not retried while the spec stays, even with the alarm quiet again.
    await set_alarm(world, alarm, "OK")
    await asyncio.sleep(3)
    assert world.calls["UpdateEndpoint"] == 1
    still = await world.env.get("guarded")
    assert condition(still, "EndpointReady").get("reason") == "RolledBack"

    # A changed spec is a new update: it goes through.
    doc["spec"]["instanceCount"] = 3
    doc["spec"]["deploymentConfig"] = canary(0, alarm)
    await world.apply(doc)
    after = await world.ready("guarded")
    assert world.calls["UpdateEndpoint"] == 2
    assert after["status"]["endpointConfigName"] not in (
        old_config,
        rolled["status"]["failedEndpointConfigName"],
    )
    assert after["status"]["rollout"]["phase"] == "Completed"


async def test_a_canary_whose_alarm_stays_ok_completes(world: World) -> None:
    alarm = await put_alarm(world)
    doc = world.manifest(
        "calm", [await world.onnx_model("bert")], instanceCount=2, deploymentConfig=canary(1, alarm)
    )
    await world.apply(doc)
    before = await world.ready("calm")
    name = before["status"]["endpointName"]

    doc["spec"]["instanceType"] = NEW_TYPE
    await world.apply(doc)
    await wait_new_fleet(world, name, ("Baking", 1))
    after = await world.ready("calm")

    new_config = after["status"]["endpointConfigName"]
    assert new_config != before["status"]["endpointConfigName"]
    assert condition(after, "EndpointReady")["reason"] == "InService"
    rollout = after["status"]["rollout"]
    assert (rollout["endpointConfigName"], rollout["phase"]) == (new_config, "Completed")
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == new_config
    assert "FailureReason" not in endpoint
    assert world.calls["UpdateEndpoint"] == 1


async def test_a_linear_update_shows_its_steps(world: World) -> None:
    linear = {
        "blueGreenUpdatePolicy": {
            "trafficRoutingConfiguration": {
                "type": "LINEAR",
                "waitIntervalInSeconds": 2,
                "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 25},
            }
        }
    }
    doc = world.manifest(
        "stepwise", [await world.onnx_model("bert")], instanceCount=4, deploymentConfig=linear
    )
    await world.apply(doc)
    before = await world.ready("stepwise")
    name = before["status"]["endpointName"]

    doc["spec"]["instanceType"] = NEW_TYPE
    await world.apply(doc)
    sagemaker_saw: list[tuple[str, int]] = []
    status_saw: list[tuple[str, int | None]] = []
    for _ in range(600):
        fleet = new_fleet(await world.describe("endpoint", name))
        if fleet is not None and fleet not in sagemaker_saw:
            sagemaker_saw.append(fleet)
        obj = await world.env.get("stepwise")
        rollout = ((obj or {}).get("status") or {}).get("rollout") or {}
        seen = (rollout.get("phase"), rollout.get("newInstances"))
        if rollout and (not status_saw or status_saw[-1] != seen):
            status_saw.append(seen)
        if obj is not None and is_current(obj) and condition(obj, "Ready").get("status") == "True":
            break
        await asyncio.sleep(0.05)

    # SageMaker's own view: a quarter of the new fleet more at each step, each baked.
    assert [f for f in sagemaker_saw if f[0] == "Baking"] == [
        ("Baking", 1),
        ("Baking", 2),
        ("Baking", 3),
        ("Baking", 4),
    ]
    # The status followed: baking steps with a growing new fleet, then Completed.
    baking = [n for phase, n in status_saw if phase == "Baking"]
    assert len(baking) >= 2 and baking == sorted(baking), status_saw
    assert status_saw[-1][0] == "Completed", status_saw
    after = await world.ready("stepwise")
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == after["status"]["endpointConfigName"]
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 4
