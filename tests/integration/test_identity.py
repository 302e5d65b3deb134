"""The endpoint's identity (region, name, archive location) cannot move: nothing is orphaned.

The real API server refuses such a change (the CRD's transition rules); where the rules did
not run (an API server or CRD without them: the emulator), the operator refuses it itself,
touches nothing in AWS, and deletion still removes what the old identity made.
"""

from __future__ import annotations

import copy

import pytest
from mme_operator.local.environment import KubeApiError

from tests.integration.conftest import World, condition, is_current


async def test_the_server_refuses_a_region_or_name_change(world: World) -> None:
    doc = world.manifest("pinned", [await world.onnx_model("bert")], endpointName="pinned-ep")
    await world.apply(doc)
    await world.ready("pinned")

    for field, value in (("region", "eu-west-1"), ("endpointName", "elsewhere")):
        moved = copy.deepcopy(doc)
        moved["spec"][field] = value
        with pytest.raises(KubeApiError, match=f"{field} cannot change after creation"):
            await world.apply(moved)

    assert (await world.wait_endpoint("pinned-ep", "InService"))["EndpointName"] == "pinned-ep"
    assert world.calls["CreateEndpoint"] == 1


@pytest.mark.emulator
async def test_the_operator_refuses_a_region_change_and_deletion_cleans_the_original(
    world: World,
) -> None:
    doc = world.manifest("wanderer", [await world.onnx_model("bert")])
    await world.apply(doc)
    ready = await world.ready("wanderer")
    endpoint = ready["status"]["endpointName"]
    assert ready["status"]["region"] == "us-east-1"

    doc["spec"]["region"] = "eu-west-1"
    await world.apply(doc)
    obj = await world.wait_for(
        "wanderer",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "IdentityChanged",
        "Ready=False IdentityChanged",
    )

    message = condition(obj, "Ready")["message"]
    assert "spec.region us-east-1 -> eu-west-1" in message
    assert "delete this ModelEndpoint and create a new one" in message
    assert obj["status"]["phase"] == "Failed"
    assert world.calls["CreateEndpoint"] == 1
    assert (await world.wait_endpoint(endpoint, "InService"))["EndpointName"] == endpoint

    await world.env.delete("wanderer")
    await world.wait_gone("wanderer")
    await world.wait_endpoint_gone(endpoint)
    assert await world.keys("mme/wanderer/") == []
