"""A user changes a running ModelEndpoint: models come and go through S3, instances through
a new EndpointConfig, and a failed update is reported, not retried."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import World, condition, eventually, is_current


async def test_adding_a_model_uploads_one_archive_and_leaves_the_endpoint_alone(
    world: World,
) -> None:
    bert = await world.onnx_model("bert")
    doc = world.manifest("grow", [bert])
    await world.apply(doc)
    before = await world.ready("grow")
    keys_before = await world.keys("mme/grow/")
    config = before["status"]["endpointConfigName"]
    configs_created = world.calls["CreateEndpointConfig"]

    doc["spec"]["models"].append(await world.python_model("tokenizer"))
    await world.apply(doc)
    after = await world.ready("grow")

    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    keys_after = await world.keys("mme/grow/")
    new = sorted(set(keys_after) - set(keys_before))
    assert set(keys_before) <= set(keys_after)
    [tokenizer] = [m for m in after["status"]["models"] if m["name"] == "tokenizer"]
    assert new == [f"mme/grow/{tokenizer['targetModel']}"]
    assert world.calls["UpdateEndpoint"] == 0
    assert world.calls["CreateEndpointConfig"] == configs_created
    assert after["status"]["endpointConfigName"] == config
    endpoint = await world.describe("endpoint", after["status"]["endpointName"])
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == config


async def test_changing_a_model_without_grace_period_removes_the_old_archive_at_once(
    world: World,
) -> None:
    bert = await world.onnx_model("bert")
    doc = world.manifest("retrain", [bert])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = 0
    await world.apply(doc)
    before = await world.ready("retrain")
    [old] = before["status"]["models"]

    doc["spec"]["models"][0]["maxBatchSize"] = 32
    await world.apply(doc)
    after = await world.ready("retrain")

    [new] = after["status"]["models"]
    assert new["targetModel"] != old["targetModel"]
    # SageMaker never reloads an overwritten object: the new archive has a new name.
    assert await world.keys("mme/retrain/") == [f"mme/retrain/{new['targetModel']}"]
    assert world.calls["UpdateEndpoint"] == 0


async def test_removing_a_model_deletes_its_archive_only(world: World) -> None:
    doc = world.manifest(
        "shrink", [await world.onnx_model("bert"), await world.python_model("tok")]
    )
    # Without a grace period (a removed model's archive is kept through it otherwise).
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = 0
    await world.apply(doc)
    before = await world.ready("shrink")
    targets = {m["name"]: m["targetModel"] for m in before["status"]["models"]}

    doc["spec"]["models"] = [m for m in doc["spec"]["models"] if m["name"] == "bert"]
    await world.apply(doc)
    after = await world.ready("shrink")

    assert [m["name"] for m in after["status"]["models"]] == ["bert"]
    assert await world.keys("mme/shrink/") == [f"mme/shrink/{targets['bert']}"]
    assert world.calls["UpdateEndpoint"] == 0
    assert after["status"]["endpointConfigName"] == before["status"]["endpointConfigName"]


async def test_changing_the_instance_type_rolls_a_new_endpoint_config(world: World) -> None:
    doc = world.manifest("resize", [await world.onnx_model("bert")])
    await world.apply(doc)
    before = await world.ready("resize")
    name = before["status"]["endpointName"]
    old_config = before["status"]["endpointConfigName"]
    old_described = await world.describe("endpoint_config", old_config)
    assert old_described is not None
    old_model = old_described["ProductionVariants"][0]["ModelName"]

    doc["spec"]["instanceType"] = "ml.g5.2xlarge"
    await world.apply(doc)
    after = await world.ready("resize")

    new_config = after["status"]["endpointConfigName"]
    assert new_config != old_config
    assert world.calls["UpdateEndpoint"] == 1
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == new_config
    described = await world.describe("endpoint_config", new_config)
    assert described is not None
    variant = described["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.g5.2xlarge"

    async def old_config_gone() -> bool:
        return await world.describe("endpoint_config", old_config) is None

    await eventually(old_config_gone, f"deletion of {old_config}", timeout=5)
    if variant["ModelName"] != old_model:
        assert await world.describe("model", old_model) is None
    assert await world.describe("model", variant["ModelName"]) is not None


async def test_a_failed_update_is_reported_and_not_retried(world: World) -> None:
    doc = world.manifest("unlucky", [await world.onnx_model("bert")])
    await world.apply(doc)
    before = await world.ready("unlucky")
    name = before["status"]["endpointName"]
    old_config = before["status"]["endpointConfigName"]
    world.env.aws.faults.fail_next_update("Injected failure: not enough capacity.")

    doc["spec"]["instanceType"] = "ml.g5.2xlarge"
    await world.apply(doc)
    failed = await world.wait_for(
        "unlucky",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "UpdateFailed",
        "Ready=False UpdateFailed",
    )

    ready = condition(failed, "Ready")
    assert ready["status"] == "False"
    assert "not enough capacity" in ready["message"]
    bad_config = failed["status"]["failedEndpointConfigName"]
    assert bad_config not in (None, old_config)
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == old_config
    # No retry storm: the failed config is not applied again while the spec stays.
    await asyncio.sleep(3)
    assert world.calls["UpdateEndpoint"] == 1
    still = await world.env.get("unlucky")
    assert condition(still, "Ready").get("reason") == "UpdateFailed"

    doc["spec"]["instanceCount"] = 2
    await world.apply(doc)
    after = await world.ready("unlucky")

    assert world.calls["UpdateEndpoint"] == 2
    new_config = after["status"]["endpointConfigName"]
    assert new_config not in (old_config, bad_config)
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == new_config
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 2
