"""The MME cache signals, end to end: a request trace over five models thrashes the cache of
a T4 (16 GiB) and stays loaded on an A10G (24 GiB); the local SageMaker publishes what its
per-instance LRU did to its CloudWatch, the operator reads it once per metrics interval and
``CacheHealthy`` follows: False/Thrashing with the sizing's fix, True after the type change."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.conftest import World, condition, is_current

# Each model: 16 GPU copies x (a few bytes x 1.5 + 256 MiB) = 4,097 MiB in the local
# SageMaker and in the sizing estimate alike: 3 of the 5 fit a T4, all 5 an A10G.
COPIES = 16
INTERVAL = 1.0


async def replay(world: World, endpoint: str, targets: list[str], rounds: int) -> None:
    """Every model in turn, ``rounds`` times (the hot set is all of them)."""
    runtime = world.env.aws.client("sagemaker-runtime")
    for _ in range(rounds):
        for target in targets:
            await world.aws(
                runtime.invoke_endpoint, EndpointName=endpoint, TargetModel=target, Body=b"{}"
            )


def cache_is(status: str, reason: str, invocations: int) -> Any:
    """CacheHealthy is ``status``/``reason`` over a window that counts the whole trace (a
    read in the middle of it may judge a part)."""

    def check(obj: dict[str, Any]) -> bool:
        found = condition(obj, "CacheHealthy")
        counted = (obj["status"].get("cache") or {}).get("invocations") or 0
        return bool(
            found.get("status") == status
            and found.get("reason") == reason
            and counted >= invocations
        )

    return check


@pytest.mark.settings(metrics_interval_seconds=INTERVAL, metrics_window_seconds=600)
async def test_a_thrashing_trace_turns_cache_healthy_false_and_a_larger_type_true(
    world: World,
) -> None:
    models = []
    for i in range(5):
        model = await world.onnx_model(f"m{i}")
        model["instanceGroups"] = [{"count": COPIES, "kind": "KIND_GPU"}]
        models.append(model)
    doc = world.manifest("thrash", models, instanceType="ml.g4dn.xlarge")
    await world.apply(doc)
    ready = await world.ready("thrash", timeout=90)
    endpoint = ready["status"]["endpointName"]
    targets = [m["targetModel"] for m in ready["status"]["models"]]
    started, reads_before = time.monotonic(), world.calls["GetMetricData"]

    await replay(world, endpoint, targets, rounds=6)
    # The load checks' 5 invocations and the trace's 30.
    thrashing = await world.wait_for(
        "thrash", cache_is("False", "Thrashing", 35), "CacheHealthy False/Thrashing", timeout=90
    )

    cache = thrashing["status"]["cache"]
    assert cache["cacheHitRatio"] < 0.2
    assert cache["modelUnloads"] == cache["modelLoads"] - 3  # every load, into room for 3
    assert cache["gpuMemoryUtilizationPercent"] > 70
    assert cache["endpointConfigName"] == thrashing["status"]["endpointConfigName"]
    message = condition(thrashing, "CacheHealthy")["message"]
    assert "Fix: " in message and "use ml.g5.xlarge" in message
    assert condition(thrashing, "Ready")["status"] == "True"  # it serves, slower
    events = await world.events("thrash")
    assert any(e["reason"] == "Thrashing" and e["type"] == "Warning" for e in events)
    # One GetMetricData per endpoint per interval, and none from the drift checks.
    elapsed = time.monotonic() - started
    reads = world.calls["GetMetricData"] - reads_before
    assert 1 <= reads <= elapsed / INTERVAL + 2, (reads, elapsed)

    doc["spec"]["instanceType"] = "ml.g5.xlarge"
    await world.apply(doc)
    updated = await world.wait_for(
        "thrash",
        lambda obj: (
            is_current(obj)
            and obj["status"].get("phase") == "Ready"
            and obj["status"].get("endpointConfigName") != ready["status"]["endpointConfigName"]
        ),
        "Ready on ml.g5.xlarge",
        timeout=90,
    )
    new_config = updated["status"]["endpointConfigName"]
    # The new fleet is measured from the first read that sees its config.
    await world.wait_for(
        "thrash",
        lambda obj: (obj["status"].get("cache") or {}).get("endpointConfigName") == new_config,
        "a metrics window on the new fleet",
        timeout=60,
    )

    await replay(world, endpoint, targets, rounds=8)
    healthy = await world.wait_for(
        "thrash", cache_is("True", "CacheEffective", 40), "CacheHealthy True", timeout=90
    )

    cache = healthy["status"]["cache"]
    assert cache["invocations"] == 40
    assert cache["cacheHitRatio"] == pytest.approx(35 / 40)
    assert cache["modelUnloads"] == 0
    assert cache["loadedModels"] >= 1
    assert (await world.describe("endpoint", endpoint) or {})["EndpointConfigName"] == new_config
