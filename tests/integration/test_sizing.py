"""A ModelEndpoint without instanceType: the operator chooses by GPU-memory fit and cost."""

from __future__ import annotations

from typing import Any

from mme_operator.sizing import get_catalogue

from tests.integration.conftest import World, condition, is_current

MIB = 1024**2


def sized(world: World, name: str, models: list[dict[str, Any]], **sizing: Any) -> dict[str, Any]:
    doc = world.manifest(name, models, sizing=sizing)
    del doc["spec"]["instanceType"]
    return doc


async def test_a_sized_endpoint_reaches_ready_on_the_cheapest_type_that_fits(world: World) -> None:
    await world.apply(sized(world, "sized", [await world.python_model("echo")]))

    obj = await world.ready("sized")

    status = obj["status"]
    # A few bytes of weights fit anywhere: the cheapest GPU MME type priced in us-east-1.
    assert status["instanceType"] == "ml.g4dn.xlarge"
    assert "cheapest MME type that fits" in status["instanceTypeReason"]
    assert status["estimatedCostPerHour"] == get_catalogue().price("ml.g4dn.xlarge", "us-east-1")
    assert status["capacity"]["fits"] is True
    assert status["capacity"]["gpuMemoryAvailableMiB"] == int(16 * 1024 * 0.9)
    assert status["capacity"]["models"] == [
        {"name": "echo", "gpuMemoryMiB": status["capacity"]["gpuMemoryRequiredMiB"],
         "basis": "estimate"}
    ]  # fmt: skip
    assert condition(obj, "CapacityFits")["status"] == "True"
    config = await world.describe("endpoint_config", status["endpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"


async def test_the_choice_follows_allowed_families_and_overrides(world: World) -> None:
    model = {**await world.python_model("big"), "gpuMemoryMiB": 18_000}
    await world.apply(sized(world, "big", [model], allowedFamilies=["ml.g5"], headroomPercent=20))

    obj = await world.ready("big")

    # 18000 MiB: more than a 16 GiB T4 holds, within 80% of a 24 GiB A10G (19660 MiB).
    assert obj["status"]["instanceType"] == "ml.g5.xlarge"
    assert obj["status"]["capacity"]["models"][0]["basis"] == "gpuMemoryMiB"


async def test_models_that_do_not_fit_are_a_condition_not_a_block(world: World) -> None:
    model = {**await world.python_model("huge"), "gpuMemoryMiB": 30 * 1024}
    doc = world.manifest("huge", [model])  # instanceType ml.g5.xlarge: 24 GiB

    await world.apply(doc)
    obj = await world.ready("huge")

    fits = condition(obj, "CapacityFits")
    assert fits["status"] == "False"
    assert fits["reason"] == "DoesNotFit"
    assert "30720 MiB" in fits["message"]
    assert "split the models" in fits["message"]
    assert condition(obj, "Ready")["status"] == "True"


async def test_the_chosen_type_stays_while_the_models_fit(world: World) -> None:
    model = await world.python_model("steady")
    await world.apply(sized(world, "steady", [model], allowedFamilies=["ml.g5", "ml.g4dn"]))
    first = await world.ready("steady")
    assert first["status"]["instanceType"] == "ml.g4dn.xlarge"

    # Growing past a T4 moves it; shrinking again keeps the new type (no flapping).
    grown = {**model, "gpuMemoryMiB": 20_000}
    await world.apply(sized(world, "steady", [grown], allowedFamilies=["ml.g5", "ml.g4dn"]))
    moved = await world.wait_for(
        "steady",
        lambda obj: is_current(obj) and obj["status"].get("instanceType") == "ml.g5.xlarge",
        "moved to ml.g5.xlarge",
    )
    assert "no longer fits" in moved["status"]["instanceTypeReason"]
    await world.ready("steady", timeout=30)

    shrunk = {**model, "gpuMemoryMiB": 1_000}
    await world.apply(sized(world, "steady", [shrunk], allowedFamilies=["ml.g5", "ml.g4dn"]))
    kept = await world.wait_for(
        "steady",
        lambda obj: is_current(obj) and obj["status"].get("phase") == "Ready",
        "Ready again",
    )
    assert kept["status"]["instanceType"] == "ml.g5.xlarge"
    assert kept["status"]["instanceTypeReason"] == moved["status"]["instanceTypeReason"]
