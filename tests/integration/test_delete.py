"""A user deletes a ModelEndpoint: deletionPolicy decides whether AWS resources go too."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import World


async def _deployed(world: World, doc: dict[str, Any]) -> dict[str, Any]:
    """Apply ``doc``, wait for Ready, and return what it made: names and archive keys."""
    await world.apply(doc)
    obj = await world.ready(doc["metadata"]["name"])
    status = obj["status"]
    config = await world.describe("endpoint_config", status["endpointConfigName"])
    assert config is not None
    return {
        "endpoint": status["endpointName"],
        "config": status["endpointConfigName"],
        "model": config["ProductionVariants"][0]["ModelName"],
        "keys": await world.keys(doc["spec"]["artifacts"]["prefix"]),
    }


async def test_delete_policy_removes_endpoint_configs_models_and_archives(world: World) -> None:
    doc = world.manifest(
        "doomed", [await world.onnx_model("bert"), await world.python_model("tok")]
    )
    made = await _deployed(world, doc)
    assert len(made["keys"]) == 2

    await world.env.delete("doomed")
    await world.wait_gone("doomed")

    assert await world.describe("endpoint", made["endpoint"]) is None
    assert await world.describe("endpoint_config", made["config"]) is None
    assert await world.describe("model", made["model"]) is None
    assert await world.keys("mme/doomed/") == []
    assert world.calls["DeleteEndpoint"] == 1


async def test_retain_policy_keeps_everything(world: World) -> None:
    doc = world.manifest("kept", [await world.onnx_model("bert")], deletionPolicy="Retain")
    made = await _deployed(world, doc)

    await world.env.delete("kept")
    await world.wait_gone("kept")

    endpoint = await world.describe("endpoint", made["endpoint"])
    assert endpoint is not None
    assert endpoint["EndpointStatus"] == "InService"
    assert await world.describe("endpoint_config", made["config"]) is not None
    assert await world.describe("model", made["model"]) is not None
    assert await world.keys("mme/kept/") == made["keys"]
    assert world.calls["DeleteEndpoint"] == 0
