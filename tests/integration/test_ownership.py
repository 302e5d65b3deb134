"""The operator touches only what it owns: foreign archives and endpoints are left alone,
and an existing endpoint is taken over only when the user says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import ROLE, World, condition, is_current

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"


async def test_foreign_objects_under_the_prefix_survive_reconciles_and_deletion(
    world: World,
) -> None:
    prefix = "mme/shared/"
    # Named like our archives (even like one of our models), but uploaded by someone else.
    foreign = [f"{prefix}foo-0123456789ab.tar.gz", f"{prefix}bert-0123456789ab.tar.gz"]
    for key in foreign:
        await world.aws(world.s3.put_object, Bucket=world.bucket, Key=key, Body=b"not ours")
    doc = world.manifest("shared", [await world.onnx_model("bert")])
    await world.apply(doc)
    await world.ready("shared")

    doc["spec"]["models"].append(await world.python_model("tok"))
    await world.apply(doc)
    ready = await world.ready("shared")
    ours = {f"{prefix}{m['targetModel']}" for m in ready["status"]["models"]}
    assert set(await world.keys(prefix)) == ours | set(foreign)

    await world.env.delete("shared")
    await world.wait_gone("shared")

    assert await world.keys(prefix) == sorted(foreign)


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_foreign_object_at_our_archive_key_is_a_conflict_never_served_as_ours(
    world: World,
) -> None:
    # Keys do not depend on the owner: a first ModelEndpoint shows which key a second one
    # with the same model will want (what `mme-operator plan` prints).
    bert = await world.onnx_model("bert")
    await world.apply(world.manifest("first", [bert]))
    target = (await world.ready("first"))["status"]["models"][0]["targetModel"]
    key = f"mme/second/{target}"
    await world.aws(world.s3.put_object, Bucket=world.bucket, Key=key, Body=b"foreign bytes")

    await world.apply(world.manifest("second", [bert]))
    found = await world.wait_for(
        "second",
        lambda obj: condition(obj, "ArtifactsSynced").get("reason") == "ArtifactConflict",
        "the conflict condition",
    )
    synced = condition(found, "ArtifactsSynced")
    assert synced["status"] == "False"
    assert f"s3://{world.bucket}/{key}" in synced["message"]
    assert condition(found, "Ready")["status"] == "False"
    assert found["status"]["models"][0]["state"] == "Failed"
    head = await world.aws(world.s3.head_object, Bucket=world.bucket, Key=key)
    assert head["Metadata"] == {}
    got = await world.aws(world.s3.get_object, Bucket=world.bucket, Key=key)
    assert got["Body"].read() == b"foreign bytes"
    assert await world.keys("mme/second/") == [key]

    # Once its owner removes the object, the model is uploaded and served.
    await world.aws(world.s3.delete_object, Bucket=world.bucket, Key=key)
    ready = await world.ready("second", timeout=20)
    assert condition(ready, "ArtifactsSynced")["reason"] == "Synced"
    head = await world.aws(world.s3.head_object, Bucket=world.bucket, Key=key)
    assert head["Metadata"]["mme-owner-uid"] == ready["metadata"]["uid"]


async def _foreign_endpoint(world: World, name: str) -> dict[str, Any]:
    """An endpoint ``name`` created by hand, without the operator's tags."""
    model, config = f"{name}-by-hand", f"{name}-by-hand-config"
    await world.aws(
        world.sm.create_model,
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{world.bucket}/elsewhere/",
            "Mode": "MultiModel",
        },
    )
    await world.aws(
        world.sm.create_endpoint_config,
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    await world.aws(world.sm.create_endpoint, EndpointName=name, EndpointConfigName=config)
    await world.wait_endpoint(name, "InService")
    return {"model": model, "config": config}


async def test_an_endpoint_that_is_not_ours_is_reported_and_left_alone(world: World) -> None:
    made = await _foreign_endpoint(world, "default-squatter")
    doc = world.manifest(
        "squatter", [await world.onnx_model("bert")], endpointName="default-squatter"
    )
    await world.apply(doc)

    obj = await world.wait_for(
        "squatter",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "NotOwned",
        "Ready=False NotOwned",
    )

    ready = condition(obj, "Ready")
    assert ready["status"] == "False"
    assert "mme-operator.io/adopt-endpoint" in ready["message"]
    endpoint = await world.describe("endpoint", "default-squatter")
    assert endpoint is not None
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == made["config"]
    assert world.calls["UpdateEndpoint"] == 0
    assert world.calls["DeleteEndpoint"] == 0

    # Deleting the ModelEndpoint (deletionPolicy Delete) still leaves the endpoint alone.
    await world.env.delete("squatter")
    await world.wait_gone("squatter")
    endpoint = await world.describe("endpoint", "default-squatter")
    assert endpoint is not None
    assert endpoint["EndpointStatus"] == "InService"
    assert await world.describe("endpoint_config", made["config"]) is not None
    assert await world.describe("model", made["model"]) is not None
    assert world.calls["DeleteEndpoint"] == 0


@pytest.mark.settings(allow_endpoint_adoption=True)
async def test_the_adopt_annotation_takes_over_an_existing_endpoint(world: World) -> None:
    made = await _foreign_endpoint(world, "default-heir")
    doc = world.manifest("heir", [await world.onnx_model("bert")], endpointName="default-heir")
    await world.apply(doc)
    await world.wait_for(
        "heir", lambda obj: condition(obj, "Ready").get("reason") == "NotOwned", "NotOwned"
    )

    doc["metadata"]["annotations"] = {"mme-operator.io/adopt-endpoint": "default-heir"}
    await world.apply(doc)
    obj = await world.wait_for(
        "heir",
        lambda obj: (
            condition(obj, "Ready").get("status") == "True"
            and obj["status"].get("phase") == "Ready"
        ),
        "Ready after adoption",
    )

    endpoint = await world.describe("endpoint", "default-heir")
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == obj["status"]["endpointConfigName"]
    tags = await world.aws(world.sm.list_tags, ResourceArn=endpoint["EndpointArn"])
    owner = {t["Key"]: t["Value"] for t in tags["Tags"]}.get("mme-operator.io/owner-uid")
    assert owner == obj["metadata"]["uid"]
    assert world.calls["UpdateEndpoint"] == 1
    # What the operator did not create stays, even once the endpoint is its own.
    assert await world.describe("endpoint_config", made["config"]) is not None
    assert await world.describe("model", made["model"]) is not None


async def test_adoption_is_refused_where_the_operator_does_not_allow_it(world: World) -> None:
    made = await _foreign_endpoint(world, "by-hand")
    doc = world.manifest(
        "claimant",
        [await world.onnx_model("bert")],
        annotations={"mme-operator.io/adopt-endpoint": "by-hand"},
        endpointName="by-hand",
    )
    await world.apply(doc)
    obj = await world.wait_for(
        "claimant",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "NotOwned",
        "Ready=False NotOwned",
    )
    assert "MME_ALLOW_ENDPOINT_ADOPTION" in condition(obj, "Ready")["message"]
    endpoint = await world.describe("endpoint", "by-hand")
    assert endpoint is not None
    assert endpoint["EndpointConfigName"] == made["config"]
    tags = await world.aws(world.sm.list_tags, ResourceArn=endpoint["EndpointArn"])
    assert tags["Tags"] == []
    assert world.calls["AddTags"] == 0
    assert world.calls["UpdateEndpoint"] == 0


async def inventory(world: World, endpoint_name: str, prefix: str) -> dict[str, Any]:
    """Everything of one tenant in SageMaker and S3, with what a write would change."""
    endpoint = await world.describe("endpoint", endpoint_name)
    assert endpoint is not None
    config = await world.describe("endpoint_config", endpoint["EndpointConfigName"])
    assert config is not None
    model_name = config["ProductionVariants"][0]["ModelName"]
    model = await world.describe("model", model_name)
    assert model is not None
    found: dict[str, Any] = {
        "endpoint": {k: endpoint[k] for k in ("EndpointConfigName", "EndpointStatus")},
        "config": config["EndpointConfigName"],
        "model": {k: model[k] for k in ("ModelName", "PrimaryContainer", "ExecutionRoleArn")},
    }
    for kind, arn in (
        ("endpoint", endpoint["EndpointArn"]),
        ("config", config["EndpointConfigArn"]),
        ("model", model["ModelArn"]),
    ):
        tags = await world.aws(world.sm.list_tags, ResourceArn=arn)
        found[f"{kind} tags"] = sorted((t["Key"], t["Value"]) for t in tags["Tags"])
    listing = await world.aws(world.s3.list_objects_v2, Bucket=world.bucket, Prefix=prefix)
    found["s3"] = sorted(
        (o["Key"], o["ETag"], str(o["LastModified"])) for o in listing.get("Contents", [])
    )
    return found


@pytest.mark.settings(allow_endpoint_adoption=True)
async def test_another_tenants_endpoint_is_never_taken_whatever_the_annotation(
    world: World,
) -> None:
    # B runs; A names B's endpoint and asks to adopt it (adoption allowed on this operator,
    # so only the owner tag stands in the way).
    bert = await world.onnx_model("bert")
    await world.apply(world.manifest("victim", [bert]))
    owner = await world.ready("victim")
    victim_endpoint = owner["status"]["endpointName"]
    before = await inventory(world, victim_endpoint, "mme/victim/")
    updates = world.calls["UpdateEndpoint"]

    intruder = world.manifest(
        "intruder",
        [await world.python_model("tok")],
        annotations={"mme-operator.io/adopt-endpoint": victim_endpoint},
        endpointName=victim_endpoint,
        environment={"STOLEN": "1"},
    )
    await world.apply(intruder)
    obj = await world.wait_for(
        "intruder",
        lambda obj: is_current(obj) and condition(obj, "Ready").get("reason") == "NotOwned",
        "Ready=False NotOwned",
    )
    message = condition(obj, "Ready")["message"]
    assert condition(obj, "Ready")["status"] == "False"
    assert owner["metadata"]["uid"] not in message
    assert "default/victim" not in message
    assert "another ModelEndpoint" in message

    # Deleting A (deletionPolicy Delete) takes nothing of B's with it.
    await world.env.delete("intruder")
    await world.wait_gone("intruder")

    after = await world.env.get("victim", "default")
    assert after is not None
    assert after["status"]["phase"] == "Ready"
    assert condition(after, "Ready")["status"] == "True"
    assert await inventory(world, victim_endpoint, "mme/victim/") == before
    assert world.calls["AddTags"] == 0
    assert world.calls["UpdateEndpoint"] == updates
    assert world.calls["DeleteEndpoint"] == 0


async def test_another_tenants_archives_are_never_overwritten_or_deleted(world: World) -> None:
    # A points its artifacts at B's prefix with B's very model: its archive key is B's.
    bert = await world.onnx_model("bert")
    await world.apply(world.manifest("owner-b", [bert]))
    owner = await world.ready("owner-b")
    before = await inventory(world, owner["status"]["endpointName"], "mme/owner-b/")
    heads = {
        key: await world.aws(world.s3.head_object, Bucket=world.bucket, Key=key)
        for key, _, _ in before["s3"]
    }

    intruder = world.manifest("squat-a", [bert])
    intruder["spec"]["artifacts"]["prefix"] = "mme/owner-b/"
    await world.apply(intruder)
    found = await world.wait_for(
        "squat-a",
        lambda obj: condition(obj, "ArtifactsSynced").get("reason") == "ArtifactConflict",
        "ArtifactsSynced=False ArtifactConflict",
    )
    assert owner["metadata"]["uid"] not in condition(found, "ArtifactsSynced")["message"]
    await world.env.delete("squat-a")
    await world.wait_gone("squat-a")

    assert await inventory(world, owner["status"]["endpointName"], "mme/owner-b/") == before
    for key, head in heads.items():
        now = await world.aws(world.s3.head_object, Bucket=world.bucket, Key=key)
        assert (now["ETag"], now["Metadata"]) == (head["ETag"], head["Metadata"])
    after = await world.env.get("owner-b", "default")
    assert after is not None and condition(after, "Ready")["status"] == "True"
