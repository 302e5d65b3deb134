"""The operator restarts (a new pod, an upgrade): endpoints that need nothing get nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import World


# The emulator counts every write by resource (a real API server has no such counter).
@pytest.mark.emulator
async def test_restart_with_nothing_changed_writes_nothing(world: World) -> None:
    models = [await world.python_model(f"m{i}") for i in range(3)]
    await world.apply(world.manifest("steady", models))
    before = await world.ready("steady")
    await asyncio.sleep(1.0)  # the last pass's writes land
    await world.env.stop_operator()
    world.env.reset_kube_writes()
    world.env.aws.reset_calls()

    await world.env.start_operator()
    # The resume pass runs at once; give it time to finish (and to write, were it to).
    await asyncio.sleep(3.0)

    after = await world.ready("steady")
    assert after["status"] == before["status"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    writes = world.env.kube_writes
    assert {w: n for w, n in writes.items() if "modelendpoints" in w} == {}
    assert writes["CREATE events"] == 0
    calls = world.env.aws.calls
    assert calls["DescribeEndpoint"] >= 1, "the resume pass did not run"
    assert not {c for c in calls if c.startswith(("Create", "Update", "Delete"))}
