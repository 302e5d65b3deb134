"""A new version that is uploaded but fails to load keeps the loaded one serving: its
TargetModel stays in status and in the clients' ConfigMap, its archive stays in S3 past any
grace period, and it answers; a fixed version takes over once it loaded. A real tritonserver
(CPU) behind the local SageMaker loads the Python-backend models."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from mme_operator.local import TritonServer

from tests.integration.conftest import World, condition
from tests.integration.test_client_configmap import configmap
from tests.integration.test_load_check import BROKEN_PY, GOOD_PY

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(
        not TritonServer.available(), reason="tritonserver (nvidia-pytriton) not installed"
    ),
]

# Generous: several passes each loading a model in a real tritonserver, on a loaded machine.
LOAD_TIMEOUT = 120
FIXED_PY = GOOD_PY + "\n# v3: fixed (another archive than v1's)\n"


async def add_model(world: World, key: str, code: str) -> dict[str, Any]:
    """The world's Python-backend model named ``add``, its model.py ``code`` put at ``key``."""
    model = await world.python_model("add")
    model["source"] = await world.put_source(key, code)
    return model


async def doubled(world: World, endpoint: str, target: str) -> list[float]:
    """What ``target`` answers for [1.5] (an InvokeEndpoint a client sends)."""
    runtime = world.env.aws.client("sagemaker-runtime")
    request = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 1], "data": [1.5]}]}
    answer = await world.aws(
        runtime.invoke_endpoint,
        EndpointName=endpoint,
        TargetModel=target,
        ContentType="application/json",
        Body=json.dumps(request).encode(),
    )
    body = json.loads(answer["Body"].read())
    return [float(x) for x in body["outputs"][0]["data"]]


async def mapped(world: World, name: str) -> str | None:
    found = await configmap(world, f"{name}-models")
    return None if found is None else found["data"].get("add")


async def gone(world: World, prefix: str, keys: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while keys & set(await world.keys(prefix)):
        assert time.monotonic() < deadline, f"{keys & set(await world.keys(prefix))} never went"
        await asyncio.sleep(0.3)


async def broken_v2(
    world: World, doc: dict[str, Any], name: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """v1 loads and serves; v2 (a model.py Triton cannot load) is applied and fails to load.

    (v1's status, v2's status, the endpoint's name).
    """
    await world.apply(doc)
    ready = await world.ready(name, timeout=LOAD_TIMEOUT)
    [v1] = ready["status"]["models"]
    assert v1["loaded"] is True
    endpoint = ready["status"]["endpointName"]
    assert await mapped(world, name) == v1["targetModel"]
    assert await doubled(world, endpoint, v1["targetModel"]) == [3.0]

    doc["spec"]["models"] = [await add_model(world, f"{name}/v2.py", BROKEN_PY)]
    await world.apply(doc)
    failed = await world.wait_for(
        name,
        lambda obj: (obj["status"].get("models") or [{}])[0].get("state") == "LoadFailed",
        "v2 LoadFailed",
        timeout=LOAD_TIMEOUT,
    )
    [v2] = failed["status"]["models"]
    assert v2["targetModel"] != v1["targetModel"]
    return v1, v2, endpoint


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_version_that_fails_to_load_keeps_the_loaded_one_serving_until_a_fix_loads(
    world: World,
) -> None:
    grace = 3
    doc = world.manifest("keep", [await add_model(world, "keep/v1.py", GOOD_PY)])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = grace
    v1, v2, endpoint = await broken_v2(world, doc, "keep")

    # Status tells the truth (the new version is broken) and what still serves.
    failed = await world.env.get("keep", "default")
    assert failed is not None
    [model] = failed["status"]["models"]
    assert model["loaded"] is False and "no_such_module" in model["message"]
    assert (model["servingTargetModel"], model["servingS3Key"]) == (v1["targetModel"], v1["s3Key"])
    ready = condition(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "LoadFailed")
    assert f"still serving {v1['targetModel']}" in ready["message"]
    warnings = [e for e in await world.events("keep") if e["type"] == "Warning"]
    assert any(f"still serving {v1['targetModel']}" in e["message"] for e in warnings), warnings
    # Clients still get v1, which still answers.
    assert await mapped(world, "keep") == v1["targetModel"]

    # Well past the grace period (a pass every drift interval): v1's archive is still there,
    # still mapped, and still answers.
    await asyncio.sleep(grace + 4)
    keys = await world.keys("mme/keep/")
    assert v1["s3Key"] in keys and v2["s3Key"] in keys
    assert await mapped(world, "keep") == v1["targetModel"]
    assert await doubled(world, endpoint, v1["targetModel"]) == [3.0]
    latest = await world.env.get("keep", "default")
    assert latest is not None
    assert latest["status"]["models"][0]["servingTargetModel"] == v1["targetModel"]
    assert not latest["status"].get("supersededArchives")

    # v3 fixes it: it loads, clients move to it, and v1 and v2 go after their grace period.
    doc["spec"]["models"] = [await add_model(world, "keep/v3.py", FIXED_PY)]
    await world.apply(doc)
    healed = await world.ready("keep", timeout=LOAD_TIMEOUT)
    [v3] = healed["status"]["models"]
    assert v3["targetModel"] not in (v1["targetModel"], v2["targetModel"])
    assert v3["loaded"] is True and "servingTargetModel" not in v3
    assert await mapped(world, "keep") == v3["targetModel"]
    assert await doubled(world, endpoint, v3["targetModel"]) == [3.0]
    listed = {s["s3Key"] for s in healed["status"].get("supersededArchives") or []}
    assert listed == {v1["s3Key"], v2["s3Key"]}
    await gone(world, "mme/keep/", {v1["s3Key"], v2["s3Key"]}, timeout=grace + 30)
    assert await world.keys("mme/keep/") == [v3["s3Key"]]


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_without_a_grace_period_the_loaded_archive_goes_only_once_its_replacement_loaded(
    world: World,
) -> None:
    doc = world.manifest("nograce", [await add_model(world, "ng/v1.py", GOOD_PY)])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = 0
    v1, v2, endpoint = await broken_v2(world, doc, "nograce")

    # The pass that uploaded v2 did not delete v1 (its load check said LoadFailed), nor
    # do the passes after it.
    await asyncio.sleep(3)
    assert await world.keys("mme/nograce/") == sorted([v1["s3Key"], v2["s3Key"]])
    assert await mapped(world, "nograce") == v1["targetModel"]
    assert await doubled(world, endpoint, v1["targetModel"]) == [3.0]

    doc["spec"]["models"] = [await add_model(world, "ng/v3.py", FIXED_PY)]
    await world.apply(doc)
    healed = await world.ready("nograce", timeout=LOAD_TIMEOUT)
    [v3] = healed["status"]["models"]
    assert await mapped(world, "nograce") == v3["targetModel"]
    await gone(world, "mme/nograce/", {v1["s3Key"], v2["s3Key"]}, timeout=30)
    assert await world.keys("mme/nograce/") == [v3["s3Key"]]
