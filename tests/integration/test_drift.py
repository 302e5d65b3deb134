"""Someone changes AWS behind the operator's back; the drift check puts it right."""

from __future__ import annotations

import pytest

from tests.integration.conftest import World, eventually

pytestmark = pytest.mark.settings(drift_check_interval_seconds=1)


async def test_an_endpoint_deleted_by_hand_is_recreated(world: World) -> None:
    await world.apply(world.manifest("phoenix", [await world.onnx_model("bert")]))
    before = await world.ready("phoenix")
    name = before["status"]["endpointName"]
    config = before["status"]["endpointConfigName"]

    await world.aws(world.sm.delete_endpoint, EndpointName=name)
    await world.wait_endpoint_gone(name)

    endpoint = await world.wait_endpoint(name, "InService", timeout=20)
    assert endpoint["EndpointConfigName"] == config
    after = await world.ready("phoenix")
    assert after["status"]["endpointStatus"] == "InService"
    assert world.calls["CreateEndpoint"] == 2


async def test_an_archive_deleted_by_hand_is_uploaded_again(world: World) -> None:
    await world.apply(world.manifest("restock", [await world.onnx_model("bert")]))
    before = await world.ready("restock")
    [key] = await world.keys("mme/restock/")

    await world.aws(world.s3.delete_object, Bucket=world.bucket, Key=key)

    async def back() -> bool:
        return await world.keys("mme/restock/") == [key]

    await eventually(back, f"re-upload of {key}", timeout=15)
    after = await world.ready("restock")
    assert after["status"]["models"][0]["sha256"] == before["status"]["models"][0]["sha256"]
    assert world.calls["UpdateEndpoint"] == 0
