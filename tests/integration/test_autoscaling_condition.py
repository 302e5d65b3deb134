"""AutoscalingReady as a platform team reads it: Configured once Application Auto Scaling
holds the spec's scaling, Disabled once spec.autoscaling is gone, and a refused call named."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World, condition, is_current

AUTOSCALING = {"minInstances": 1, "maxInstances": 4, "targetInvocationsPerInstance": 100}
CONFIGURED = "min 1, max 4 instances, target 100 invocations per instance per minute"
DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/mme-operator/operator-pod is not authorized "
    "to perform: application-autoscaling:RegisterScalableTarget on resource: "
    "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/* because no "
    "identity-based policy allows the application-autoscaling:RegisterScalableTarget action"
)


def scaling(obj: dict[str, Any]) -> dict[str, Any]:
    return condition(obj, "AutoscalingReady")


async def test_declared_scaling_is_configured_then_disabled_when_removed(world: World) -> None:
    doc = world.manifest("elastic", [await world.onnx_model("bert")], autoscaling=AUTOSCALING)
    await world.apply(doc)
    ready = await world.ready("elastic")
    name = ready["status"]["endpointName"]

    configured = scaling(ready)
    assert (configured["status"], configured["reason"], configured["message"]) == (
        "True",
        "Configured",
        CONFIGURED,
    )
    assert configured["observedGeneration"] == ready["metadata"]["generation"]
    [target] = await world.scalable_targets(name)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)

    del doc["spec"]["autoscaling"]
    await world.apply(doc)
    disabled = await world.wait_for(
        "elastic",
        lambda obj: is_current(obj) and scaling(obj).get("reason") == "Disabled",
        "AutoscalingReady=True Disabled",
    )
    assert scaling(disabled)["status"] == "True"
    assert scaling(disabled)["message"] == (
        "no spec.autoscaling; the instance count is spec.instanceCount (1)"
    )
    assert condition(disabled, "Ready")["status"] == "True"
    assert await world.scalable_targets(name) == []


async def test_a_refused_registration_names_the_missing_permission(world: World) -> None:
    world.env.aws.faults.error(
        "AccessDeniedException",
        DENIED,
        operations="RegisterScalableTarget",
        service="application-autoscaling",
    )
    doc = world.manifest("denied", [await world.onnx_model("bert")], autoscaling=AUTOSCALING)
    await world.apply(doc)
    refused = await world.wait_for(
        "denied",
        lambda obj: scaling(obj).get("reason") == "AccessDenied",
        "AutoscalingReady=False AccessDenied",
    )
    assert scaling(refused)["status"] == "False"
    assert "lacks application-autoscaling:RegisterScalableTarget" in scaling(refused)["message"]
    # The endpoint serves; what is missing is its scaling, and Ready says why.
    assert condition(refused, "EndpointReady")["status"] == "True"
    assert condition(refused, "Ready")["reason"] == "AccessDenied"

    # Granted now: docs/operations.md's advice, any change to the ModelEndpoint applies it again.
    world.env.aws.faults.reset()
    doc["metadata"]["annotations"] = {"example.com/permission-granted": "1"}
    await world.apply(doc)
    ready = await world.ready("denied")
    assert scaling(ready)["reason"] == "Configured"
    assert len(await world.scalable_targets(ready["status"]["endpointName"])) == 1
