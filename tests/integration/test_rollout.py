"""Rollouts that keep fleets whole: an autoscaled endpoint keeps its scaled-out size across
endpoint-level changes, and a failed update is retried on purpose, once per annotation value."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import World, condition, is_current

AUTOSCALING = {"minInstances": 1, "maxInstances": 4, "targetInvocationsPerInstance": 100}
OTHER_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.08-py3"
RETRY = "mme-operator.io/retry-update"


async def scale_out(world: World, endpoint: str, count: int) -> None:
    """What Application Auto Scaling does when the load grows."""
    await world.aws(
        world.sm.update_endpoint_weights_and_capacities,
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": count}],
    )
    await world.wait_endpoint(endpoint, "Updating")
    await world.wait_endpoint(endpoint, "InService")


async def instances(world: World, endpoint: str) -> int:
    described = await world.describe("endpoint", endpoint)
    assert described is not None
    return int(described["ProductionVariants"][0]["CurrentInstanceCount"])


async def test_a_scaled_out_fleet_keeps_its_size_across_an_image_change(world: World) -> None:
    doc = world.manifest("scaled", [await world.onnx_model("bert")], autoscaling=AUTOSCALING)
    await world.apply(doc)
    before = await world.ready("scaled")
    name = before["status"]["endpointName"]
    assert len(await world.scalable_targets(name)) == 1
    await scale_out(world, name, 3)

    doc["spec"]["image"] = OTHER_IMAGE
    await world.apply(doc)
    after = await world.ready("scaled")

    assert after["status"]["endpointConfigName"] != before["status"]["endpointConfigName"]
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == OTHER_IMAGE
    assert await instances(world, name) == 3
    # Only an instance-type change needs scaling deregistered; an image change keeps it.
    [target] = await world.scalable_targets(name)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)


async def test_an_instance_type_change_deregisters_scaling_and_registers_it_again(
    world: World,
) -> None:
    doc = world.manifest("retyped", [await world.onnx_model("bert")], autoscaling=AUTOSCALING)
    await world.apply(doc)
    before = await world.ready("retyped")
    name = before["status"]["endpointName"]
    await scale_out(world, name, 2)

    # The local SageMaker refuses this update while the variant is a scalable target.
    doc["spec"]["instanceType"] = "ml.g5.2xlarge"
    await world.apply(doc)
    after = await world.ready("retyped")

    config = await world.describe("endpoint_config", after["status"]["endpointConfigName"])
    assert config is not None
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.2xlarge"
    assert await instances(world, name) == 2
    [target] = await world.scalable_targets(name)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert condition(after, "AutoscalingReady")["reason"] == "Configured"


async def test_without_autoscaling_the_spec_sets_the_instance_count(world: World) -> None:
    doc = world.manifest("fixed", [await world.onnx_model("bert")], instanceCount=2)
    await world.apply(doc)
    before = await world.ready("fixed")
    name = before["status"]["endpointName"]
    await scale_out(world, name, 3)  # someone scaled it by hand

    doc["spec"]["image"] = OTHER_IMAGE
    await world.apply(doc)
    await world.ready("fixed")

    assert await instances(world, name) == 2


async def test_a_failed_update_is_retried_once_per_annotation_value(world: World) -> None:
    doc = world.manifest("retried", [await world.onnx_model("bert")])
    await world.apply(doc)
    before = await world.ready("retried")
    name = before["status"]["endpointName"]
    world.env.aws.faults.fail_next_update("Injected failure: insufficient capacity.")
    world.env.aws.faults.fail_next_update("Injected failure: insufficient capacity.")

    doc["spec"]["instanceType"] = "ml.g5.2xlarge"
    await world.apply(doc)
    failed = await world.wait_for(
        "retried",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "UpdateFailed",
        "Ready=False UpdateFailed",
    )
    assert RETRY in condition(failed, "Ready")["message"]
    assert world.calls["UpdateEndpoint"] == 1

    # The capacity is still short: the retry fails too, and is not repeated.
    doc["metadata"]["annotations"] = {RETRY: "1"}
    await world.apply(doc)
    await world.wait_for(
        "retried",
        lambda obj: (
            obj["status"].get("retryUpdateConsumed") == "1"
            and condition(obj, "Ready").get("reason") == "UpdateFailed"
        ),
        "the retry consumed and failed again",
    )
    await asyncio.sleep(2)
    assert world.calls["UpdateEndpoint"] == 2

    # Now there is capacity: a new value retries once more, and the update goes through.
    doc["metadata"]["annotations"] = {RETRY: "2"}
    await world.apply(doc)
    after = await world.ready("retried")

    assert world.calls["UpdateEndpoint"] == 3
    assert after["status"]["retryUpdateConsumed"] == "2"
    assert after["status"].get("failedEndpointConfigName") is None
    endpoint = await world.describe("endpoint", name)
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == after["status"]["endpointConfigName"]


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_superseded_archive_is_served_through_its_grace_period_then_removed(
    world: World,
) -> None:
    doc = world.manifest("graceful", [await world.onnx_model("bert")])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = 3
    await world.apply(doc)
    before = await world.ready("graceful")
    [old] = before["status"]["models"]

    doc["spec"]["models"][0]["maxBatchSize"] = 32
    await world.apply(doc)
    after = await world.ready("graceful")

    [new] = after["status"]["models"]
    assert new["targetModel"] != old["targetModel"]
    assert new["previousTargetModel"] == old["targetModel"]
    assert new["previousS3Key"] == old["s3Key"]
    assert "previousExpiresAt" in new
    # A client still sending the old TargetModel is served: its archive is still in S3.
    assert await world.keys("mme/graceful/") == sorted([old["s3Key"], new["s3Key"]])
    assert world.calls["UpdateEndpoint"] == 0

    # The drift timer notices the end of the grace period; the next pass deletes it.
    gone = await world.wait_for(
        "graceful",
        lambda obj: not obj["status"]["models"][0].get("previousTargetModel"),
        "previous archive dropped from status",
    )
    assert gone["status"]["models"][0]["targetModel"] == new["targetModel"]
    assert await world.keys("mme/graceful/") == [new["s3Key"]]


async def test_serving_knobs_reach_the_container_the_model_and_the_variant(world: World) -> None:
    serving = {
        "modelLoadGpuLimit": 0.8,
        "modelCache": "Disabled",
        "containerStartupHealthCheckTimeoutSeconds": 900,
        "modelDataDownloadTimeoutSeconds": 1800,
    }
    doc = world.manifest("tuned", [await world.onnx_model("bert")], serving=serving)
    await world.apply(doc)
    ready = await world.ready("tuned")

    config = await world.describe("endpoint_config", ready["status"]["endpointConfigName"])
    assert config is not None
    [variant] = config["ProductionVariants"]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 1800
    model = await world.describe("model", variant["ModelName"])
    assert model is not None
    container = model["PrimaryContainer"]
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}
    # Verbose logging is off unless asked for: it is billed by the line in CloudWatch.
    assert container["Environment"] == {
        "SAGEMAKER_TRITON_LOG_VERBOSE": "0",
        "SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT": "0.8",
    }


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_failed_warm_up_is_a_condition_and_is_tried_again(world: World) -> None:
    model = await world.python_model("echo")
    model["warmup"] = True
    world.env.aws.faults.error(
        "InternalFailure",
        "An exception occurred while sending request to model.",
        500,
        operations="InvokeEndpoint",
    )
    await world.apply(world.manifest("cold", [model]))

    cold = await world.wait_for(
        "cold",
        lambda obj: condition(obj, "ModelsWarm").get("reason") == "WarmUpFailed",
        "ModelsWarm=False WarmUpFailed",
    )
    warm = condition(cold, "ModelsWarm")
    assert warm["status"] == "False"
    assert "'echo'" in warm["message"] and "InternalFailure" in warm["message"]
    # Not Ready until the model is known to load (the endpoint itself is InService).
    assert condition(cold, "EndpointReady")["status"] == "True"
    assert (condition(cold, "Ready")["status"], condition(cold, "Ready")["reason"]) == (
        "False",
        "WarmUpFailed",
    )
    assert cold["status"]["models"][0]["state"] == "Loading"
    assert not cold["status"]["models"][0].get("warmedUp")

    world.env.aws.faults.reset()
    warmed = await world.wait_for(
        "cold",
        lambda obj: condition(obj, "ModelsWarm").get("status") == "True",
        "ModelsWarm=True after the drift check",
    )
    assert warmed["status"]["models"][0]["warmedUp"] is True
    assert condition(warmed, "ModelsWarm")["reason"] == "WarmedUp"
