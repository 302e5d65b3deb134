"""A spec the CRD schema accepts but the operator cannot serve is reported, never fatal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from tests.integration.conftest import World, condition, eventually, is_current


async def test_a_missing_source_fails_that_model_and_says_which(world: World) -> None:
    good = await world.onnx_model("bert")
    missing = {
        "name": "ghost",
        "source": f"s3://{world.sources}/ghost/model.onnx",
        "platform": "onnxruntime_onnx",
    }
    await world.apply(world.manifest("haunted", [good, missing]))

    obj = await world.wait_for(
        "haunted",
        lambda obj: (
            is_current(obj)
            and condition(obj, "ArtifactsSynced").get("reason") == "SourceError"
            # Available once the endpoint is InService and loaded it (Loading until then).
            and obj["status"]["models"][0]["state"] == "Available"
        ),
        "ArtifactsSynced=False SourceError, bert Available",
    )

    models = {m["name"]: m for m in obj["status"]["models"]}
    assert models["ghost"]["state"] == "Failed"
    assert "ghost/model.onnx" in models["ghost"]["message"]
    assert "ghost" in condition(obj, "ArtifactsSynced")["message"]
    assert condition(obj, "Ready")["status"] == "False"
    # The good model is still packaged and uploaded.
    assert models["bert"]["state"] == "Available"
    assert await world.keys("mme/haunted/") == [f"mme/haunted/{models['bert']['targetModel']}"]


async def test_an_unknown_triton_version_is_an_invalid_spec(world: World) -> None:
    doc = world.manifest("futuristic", [await world.onnx_model("bert")], tritonVersion="99.01")
    await world.apply(doc)

    obj = await world.wait_for(
        "futuristic",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "InvalidSpec",
        "Ready=False InvalidSpec",
    )

    ready = condition(obj, "Ready")
    assert ready["status"] == "False"
    assert "99.01" in ready["message"]
    assert obj["status"]["phase"] == "Failed"
    assert world.calls["CreateEndpoint"] == 0

    # Nothing was created for it, and its deletion does not hang on the finalizer.
    await world.env.delete("futuristic")
    await world.wait_gone("futuristic")


async def test_the_operator_keeps_serving_others_after_bad_input(world: World) -> None:
    bad = world.manifest("bad-region", [await world.onnx_model("bert")], region="xx-nowhere-9")
    ghost = {
        "name": "ghost",
        "source": f"s3://{world.sources}/nope.onnx",
        "platform": "onnxruntime_onnx",
    }
    await world.apply(bad)
    await world.apply(world.manifest("ghostly", [ghost]))
    await world.wait_for(
        "bad-region",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("status") == "False",
        "bad-region reported",
    )

    await world.apply(world.manifest("healthy", [await world.python_model("echo")]))
    healthy = await world.ready("healthy")

    assert condition(healthy, "Ready")["status"] == "True"
    bad_ready = condition(await world.env.get("bad-region"), "Ready")
    assert bad_ready["reason"] == "InvalidSpec"
    assert "xx-nowhere-9" in bad_ready["message"]
    await world.wait_for(
        "ghostly",
        lambda obj: condition(obj, "ArtifactsSynced").get("reason") == "SourceError",
        "ghostly reported",
    )


async def test_a_multi_gpu_instance_type_is_an_invalid_spec(world: World) -> None:
    doc = world.manifest("wide", [await world.python_model("echo")], instanceType="ml.g5.12xlarge")
    await world.apply(doc)

    obj = await world.wait_for(
        "wide",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "InvalidSpec",
        "Ready=False InvalidSpec",
    )

    message = condition(obj, "SpecValid")["message"]
    assert "spec.instanceType: ml.g5.12xlarge" in message
    assert "single-GPU" in message
    assert world.calls["CreateEndpoint"] == 0


async def test_an_invalid_spec_is_a_warning_event_posted_once(world: World) -> None:
    doc = world.manifest("warned", [await world.onnx_model("bert")], tritonVersion="99.01")
    await world.apply(doc)
    await world.wait_for(
        "warned",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "InvalidSpec",
        "Ready=False InvalidSpec",
    )

    async def warnings() -> list[dict[str, Any]]:
        return [e for e in await world.events("warned") if e["type"] == "Warning"]

    await eventually(lambda: _any(warnings()), "a Warning event")
    [event] = await warnings()
    assert event["reason"] == "InvalidSpec"
    assert "99.01" in event["message"]
    # Another pass failing the same way (an annotation change) posts no second one.
    doc["metadata"]["annotations"] = {"example.com/touched": "1"}
    await world.apply(doc)
    await asyncio.sleep(2)
    assert len(await warnings()) == 1


async def _any(items: Awaitable[list[Any]]) -> bool:
    return bool(await items)
