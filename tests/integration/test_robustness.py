"""Whatever the API server hands over, and whatever is missing in S3, nothing gets stuck.

A spec that is not an object gets a condition and a status, and its deletion lets go; a
missing artifacts bucket is the user's to create: the resource says so and carries on by
itself once it exists; deleting a resource whose bucket never existed releases it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import NAMESPACE, World, condition, unique

pytestmark = pytest.mark.settings(retry_delay_seconds=0.5, poll_interval_seconds=0.3)


# The real API server refuses these (tests/kube/test_crd.py); an API server without the
# CRD's schema (an old or hand-edited CRD) hands them over, as the emulator does.
@pytest.mark.emulator
@pytest.mark.parametrize("spec", [[1, 2], "a string", None, 42, {"region": ["us-east-1"]}])
async def test_a_spec_that_is_not_an_object_gets_a_condition_and_deletes(
    world: World, spec: Any
) -> None:
    name = unique("odd")
    doc = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }
    await world.env.create(
        f"/apis/mme-operator.io/v1alpha1/namespaces/{NAMESPACE}/modelendpoints", doc
    )

    obj = await world.wait_for(
        name,
        lambda obj: condition(obj, "Ready").get("reason") == "InvalidSpec",
        "Ready=False InvalidSpec",
    )
    assert obj["status"]["phase"] == "Failed"
    assert "spec" in condition(obj, "Ready")["message"]
    assert world.calls["CreateEndpoint"] == 0

    await world.env.delete(name)
    await world.wait_gone(name)


async def test_a_missing_bucket_is_reported_and_recovers_once_created(world: World) -> None:
    bucket = unique("later")
    doc = world.manifest("patient", [await world.onnx_model("bert")])
    doc["spec"]["artifacts"]["bucket"] = bucket
    await world.apply(doc)

    obj = await world.wait_for(
        "patient",
        lambda obj: condition(obj, "Ready").get("reason") == "BucketMissing",
        "Ready=False BucketMissing",
    )
    message = condition(obj, "ArtifactsSynced")["message"]
    assert f"create bucket {bucket}" in message
    assert obj["status"]["phase"] == "Pending"
    assert world.calls["CreateModel"] == 0  # nothing on SageMaker without its archives

    await world.aws(world.s3.create_bucket, Bucket=bucket)
    obj = await world.ready("patient")
    assert condition(obj, "ArtifactsSynced")["status"] == "True"


async def test_deleting_with_a_bucket_that_never_existed_lets_go(world: World) -> None:
    doc = world.manifest("nowhere", [await world.onnx_model("bert")])
    doc["spec"]["artifacts"]["bucket"] = unique("never")
    await world.apply(doc)
    await world.wait_for(
        "nowhere",
        lambda obj: condition(obj, "Ready").get("reason") == "BucketMissing",
        "Ready=False BucketMissing",
    )

    await world.env.delete("nowhere")
    await world.wait_gone("nowhere", timeout=10)
