"""Never bill for nothing: while no model of a ModelEndpoint can be served, nothing is
created on SageMaker (no Model, EndpointConfig or Endpoint), and the resource says why."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest

from tests.integration.conftest import World, condition, is_current

pytestmark = pytest.mark.settings(drift_check_interval_seconds=1.0)


async def sagemaker_resources(world: World) -> dict[str, list[str]]:
    """Every Model, EndpointConfig and Endpoint the local SageMaker holds, by kind."""
    models = await world.aws(world.sm.list_models)
    configs = await world.aws(world.sm.list_endpoint_configs)
    endpoints = await world.aws(world.sm.list_endpoints)
    return {
        "models": [m["ModelName"] for m in models["Models"]],
        "endpointConfigs": [c["EndpointConfigName"] for c in configs["EndpointConfigs"]],
        "endpoints": [e["EndpointName"] for e in endpoints["Endpoints"]],
    }


def missing(world: World, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": f"s3://{world.sources}/{name}/model.onnx",
        "platform": "onnxruntime_onnx",
    }


async def test_every_source_missing_creates_no_sagemaker_resource(world: World) -> None:
    await world.apply(world.manifest("empty", [missing(world, "ghost"), missing(world, "wisp")]))

    obj = await world.wait_for(
        "empty",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "NoServableModels",
        "Ready=False NoServableModels",
    )

    ready = condition(obj, "Ready")
    assert ready["status"] == "False"
    assert "model 'ghost'" in ready["message"] and "model 'wisp'" in ready["message"]
    assert "no SageMaker model, endpoint config or endpoint is created" in ready["message"]
    assert condition(obj, "ArtifactsSynced")["reason"] == "SourceError"
    assert obj["status"]["phase"] == "Failed"
    assert {m["name"]: m["state"] for m in obj["status"]["models"]} == {
        "ghost": "Failed",
        "wisp": "Failed",
    }
    assert await sagemaker_resources(world) == {
        "models": [],
        "endpointConfigs": [],
        "endpoints": [],
    }
    for call in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        assert world.calls[call] == 0, call
    events = await world.events("empty")
    warnings = [e for e in events if e.get("type") == "Warning"]
    assert [e["reason"] for e in warnings] == ["NoServableModels"]

    # Once one source exists, the drift check finds it and the endpoint is created.
    await world.put_source("ghost/model.onnx", b"\x08\x07\x12\x04fake-onnx-model")
    obj = await world.wait_for(
        "empty",
        lambda obj: condition(obj, "EndpointReady").get("status") == "True",
        "EndpointReady=True",
        timeout=30,
    )
    assert condition(obj, "Ready")["reason"] == "SourceError"  # wisp is still missing
    created = await sagemaker_resources(world)
    assert created["endpoints"] == [obj["status"]["endpointName"]]


async def test_an_endpoint_whose_sources_and_archives_go_is_left_serving(world: World) -> None:
    # The endpoint exists; its archives are removed from S3 and its sources with them: it
    # is neither updated nor deleted, and says why.
    model = await world.onnx_model("bert")
    doc = world.manifest("orphaned", [model])
    await world.apply(doc)
    obj = await world.ready("orphaned")
    endpoint = obj["status"]["endpointName"]
    before = await sagemaker_resources(world)
    await world.aws(world.s3.delete_object, Bucket=world.sources, Key="bert/model.onnx")
    for key in await world.keys("mme/orphaned/"):
        await world.aws(world.s3.delete_object, Bucket=world.bucket, Key=key)
    world.env.aws.reset_calls()

    doc["spec"]["instanceCount"] = 2  # a change that would otherwise update the endpoint
    await world.apply(doc)
    obj = await world.wait_for(
        "orphaned",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "NoServableModels",
        "Ready=False NoServableModels",
    )

    assert f"endpoint {endpoint} (InService) is left as it is" in condition(obj, "Ready")["message"]
    assert await sagemaker_resources(world) == before
    for call in ("CreateModel", "CreateEndpointConfig", "UpdateEndpoint", "DeleteEndpoint"):
        assert world.calls[call] == 0, call
    described = await world.describe("endpoint", endpoint)
    assert described is not None and described["EndpointStatus"] == "InService"


def traversal_archive() -> bytes:
    """A model archive no one should unpack: a member climbs out of the model directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("1/model.py", "../../escape.py"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return buffer.getvalue()


async def test_sources_that_read_but_cannot_be_packaged_create_nothing(world: World) -> None:
    # The sources exist (the plan finds them), but every upload is refused while packaging.
    source = await world.put_source("unsafe/model.tar.gz", traversal_archive())
    models = [
        {"name": name, "source": source, "backend": "python", "maxBatchSize": 4}
        for name in ("evil", "worse")
    ]
    await world.apply(world.manifest("unpackable", models))

    obj = await world.wait_for(
        "unpackable",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "NoServableModels",
        "Ready=False NoServableModels",
    )

    message = condition(obj, "Ready")["message"]
    assert "model 'evil'" in message and "model 'worse'" in message
    assert "create SageMaker model" in message and "nothing to bill for" in message
    assert obj["status"]["phase"] == "Failed"
    assert await sagemaker_resources(world) == {
        "models": [],
        "endpointConfigs": [],
        "endpoints": [],
    }
    assert await world.keys("mme/unpackable/") == []
