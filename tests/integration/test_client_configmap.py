"""Clients read the TargetModels from a ConfigMap the ModelEndpoint owns: `<name>-models`."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import NAMESPACE, World


async def configmap(world: World, name: str) -> dict[str, Any] | None:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}"
    async with world.env.session.get(path) as response:
        if response.status == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = await response.json()
        return found


async def test_the_models_configmap_follows_the_target_models(world: World) -> None:
    doc = world.manifest(
        "mapped", [await world.onnx_model("bert"), await world.python_model("tok")]
    )
    await world.apply(doc)
    ready = await world.ready("mapped")
    targets = {m["name"]: m["targetModel"] for m in ready["status"]["models"]}

    found = await configmap(world, "mapped-models")
    assert found is not None
    assert found["data"] == {
        "bert": targets["bert"],
        "tok": targets["tok"],
        "endpoint.name": ready["status"]["endpointName"],
        "endpoint.region": "us-east-1",
        "models.json": json.dumps(
            {
                "endpointName": ready["status"]["endpointName"],
                "region": "us-east-1",
                "targetModels": targets,
            },
            sort_keys=True,
        ),
    }
    [owner] = found["metadata"]["ownerReferences"]
    assert owner["uid"] == ready["metadata"]["uid"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelEndpoint", "mapped", True)
    version = found["metadata"]["resourceVersion"]

    # A change of a model changes its key; a removed model's key goes.
    doc["spec"]["models"] = [m for m in doc["spec"]["models"] if m["name"] == "bert"]
    doc["spec"]["models"][0]["maxBatchSize"] = 8
    await world.apply(doc)
    after = await world.ready("mapped")
    [bert] = after["status"]["models"]
    updated = await configmap(world, "mapped-models")
    assert updated is not None
    assert updated["data"]["bert"] == bert["targetModel"] != targets["bert"]
    assert "tok" not in updated["data"]
    assert updated["metadata"]["resourceVersion"] != version


async def test_an_unchanged_mapping_is_not_written_again(world: World) -> None:
    doc = world.manifest("steady", [await world.onnx_model("bert")])
    await world.apply(doc)
    await world.ready("steady")
    before = await configmap(world, "steady-models")
    assert before is not None

    # A spec change that leaves every TargetModel alone (tags are not part of any name).
    doc["spec"]["tags"] = {"team": "search"}
    await world.apply(doc)
    await world.ready("steady")

    after = await configmap(world, "steady-models")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
