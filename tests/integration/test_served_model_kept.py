"""No update loses the model that serves: a new version that fails keeps the old one serving,
and every superseded archive lives until its own expiry, removals and renames included."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import World, condition
from tests.integration.test_client_configmap import configmap


def unsafe_archive() -> bytes:
    """A .tar.gz whose entry climbs out of the model directory (refused by packaging)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"\x08\x07 escaped"
        info = tarfile.TarInfo("../../escape/model.onnx")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_new_version_that_fails_to_package_keeps_the_old_one_serving(
    world: World,
) -> None:
    doc = world.manifest("steady", [await world.onnx_model("bert")])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = 2
    await world.apply(doc)
    before = await world.ready("steady")
    [v1] = before["status"]["models"]

    doc["spec"]["models"][0]["source"] = await world.put_source("bad/m.tar.gz", unsafe_archive())
    await world.apply(doc)
    found = await world.wait_for(
        "steady",
        lambda obj: condition(obj, "ArtifactsSynced").get("reason") == "ServingPrevious",
        "ArtifactsSynced=False ServingPrevious",
    )
    synced = condition(found, "ArtifactsSynced")
    assert synced["status"] == "False"
    assert "still serving" in synced["message"]
    [model] = found["status"]["models"]
    assert (model["targetModel"], model["s3Key"], model["state"]) == (
        v1["targetModel"],
        v1["s3Key"],
        "Available",
    )
    # Well past the grace period, the archive that serves is still there and still mapped.
    await asyncio.sleep(4)
    assert await world.keys("mme/steady/") == [v1["s3Key"]]
    mapping = await configmap(world, "steady-models")
    assert mapping is not None and mapping["data"]["bert"] == v1["targetModel"]
    latest = await world.env.get("steady", "default")
    assert latest is not None and latest["status"]["models"][0]["targetModel"] == v1["targetModel"]
    warnings = [e for e in await world.events("steady") if e["type"] == "Warning"]
    assert any("bert" in e["message"] for e in warnings), warnings


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_v1_v2_v3_within_the_grace_period_each_lives_until_its_own_expiry(
    world: World,
) -> None:
    grace = 6
    doc = world.manifest("chain", [await world.onnx_model("bert")])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = grace
    await world.apply(doc)
    [v1] = (await world.ready("chain"))["status"]["models"]

    doc["spec"]["models"][0]["maxBatchSize"] = 32
    await world.apply(doc)
    superseded_v1 = time.monotonic()
    [v2] = (await world.ready("chain"))["status"]["models"]
    await asyncio.sleep(3)  # v2's expiry well after v1's, even on a loaded machine
    doc["spec"]["models"][0]["maxBatchSize"] = 64
    await world.apply(doc)
    after = await world.ready("chain")
    [v3] = after["status"]["models"]
    assert len({v1["s3Key"], v2["s3Key"], v3["s3Key"]}) == 3
    assert await world.keys("mme/chain/") == sorted([v1["s3Key"], v2["s3Key"], v3["s3Key"]])
    listed = {s["s3Key"]: s["expiresAt"] for s in after["status"]["supersededArchives"]}
    assert set(listed) == {v1["s3Key"], v2["s3Key"]}
    assert listed[v1["s3Key"]] < listed[v2["s3Key"]]

    # v1 is still there a little before its own expiry (it went 2.4 s after v2 before)...
    await asyncio.sleep(max(0.0, superseded_v1 + grace - 1.5 - time.monotonic()))
    assert v1["s3Key"] in await world.keys("mme/chain/")
    # ...and goes after it, before v2.
    deadline = time.monotonic() + 10
    while v1["s3Key"] in await world.keys("mme/chain/"):
        assert time.monotonic() < deadline, "v1 never went"
        await asyncio.sleep(0.2)
    # v2 is not taken with v1: it stays until its own expiry (a pass held up past both
    # expiries may delete both, which is each at its own time).
    v2_expires = datetime.fromisoformat(listed[v2["s3Key"]].replace("Z", "+00:00"))
    assert v2["s3Key"] in await world.keys("mme/chain/") or datetime.now(UTC) >= v2_expires


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_removed_model_keeps_its_archive_for_the_grace_period(world: World) -> None:
    doc = world.manifest("trim", [await world.onnx_model("bert"), await world.python_model("tok")])
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = 3
    await world.apply(doc)
    before = await world.ready("trim")
    tok = next(m for m in before["status"]["models"] if m["name"] == "tok")

    doc["spec"]["models"] = [m for m in doc["spec"]["models"] if m["name"] == "bert"]
    await world.apply(doc)
    after = await world.ready("trim")
    assert tok["s3Key"] in await world.keys("mme/trim/")
    [listed] = after["status"]["supersededArchives"]
    assert (listed["model"], listed["targetModel"]) == ("tok", tok["targetModel"])

    deadline = time.monotonic() + 10
    while tok["s3Key"] in await world.keys("mme/trim/"):
        assert time.monotonic() < deadline, "the removed model's archive never went"
        await asyncio.sleep(0.2)
