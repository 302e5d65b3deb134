"""A call that took effect but whose answer was lost (a 5xx or no answer in time).

The local SageMaker and S3 serve the call, then fail the answer over the wire. The operator
retries; deterministic names make the retried create a read, the retried upload the same
bytes at the same key, the retried delete a no-op: nothing is duplicated, nothing is lost.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import World

pytestmark = pytest.mark.settings(
    retry_delay_seconds=0.3, poll_interval_seconds=0.3, aws_read_timeout_seconds=1.0
)

CREATES = ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
DELETES = ["DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]


async def owned_names(world: World, endpoint: str) -> dict[str, list[str]]:
    models = await world.aws(world.sm.list_models, NameContains=endpoint)
    configs = await world.aws(world.sm.list_endpoint_configs, NameContains=endpoint)
    endpoints = await world.aws(world.sm.list_endpoints, NameContains=endpoint)
    return {
        "models": [m["ModelName"] for m in models["Models"]],
        "configs": [c["EndpointConfigName"] for c in configs["EndpointConfigs"]],
        "endpoints": [e["EndpointName"] for e in endpoints["Endpoints"]],
    }


async def test_lost_answers_neither_duplicate_nor_lose_anything(world: World) -> None:
    faults = world.env.aws.faults
    before = faults.injected()
    faults.server_error(operations=CREATES[:2], count=2, after=True)
    faults.timeout_after(2.0, operations="CreateEndpoint", count=1)
    faults.server_error(operations="PutObject", count=2, after=True, service="s3")
    models = [await world.onnx_model("bert"), await world.python_model("echo")]

    await world.apply(world.manifest("unlucky", models))
    obj = await world.ready("unlucky", timeout=40)

    injected = faults.injected() - before
    assert injected["sagemaker:CreateEndpoint:after"] == 1
    assert injected["s3:PutObject:after"] == 2
    endpoint = obj["status"]["endpointName"]
    assert {k: len(v) for k, v in (await owned_names(world, endpoint)).items()} == {
        "models": 1,
        "configs": 1,
        "endpoints": 1,
    }
    wanted = sorted(f"mme/unlucky/{m['targetModel']}" for m in obj["status"]["models"])
    assert await world.keys("mme/unlucky/") == wanted

    faults.server_error(operations=DELETES, count=3, after=True)
    faults.server_error(operations="DeleteObject", count=1, after=True, service="s3")
    await world.env.delete("unlucky")
    await world.wait_gone("unlucky", timeout=40)

    assert await owned_names(world, endpoint) == {"models": [], "configs": [], "endpoints": []}
    assert await world.keys("mme/unlucky/") == []
    assert (faults.injected() - before)["s3:DeleteObject:after"] == 1
