"""A user applies a ModelEndpoint and gets a serving endpoint with one archive per model."""

from __future__ import annotations

from tests.integration.conftest import World, condition, eventually


async def test_create_reaches_ready_with_one_archive_per_model(world: World) -> None:
    bert = await world.onnx_model("bert")
    tok = await world.python_model("tokenizer")
    await world.apply(world.manifest("small-llms", [bert, tok]))

    obj = await world.ready("small-llms")

    status = obj["status"]
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "Ready")["observedGeneration"] == obj["metadata"]["generation"]
    assert condition(obj, "ArtifactsSynced")["status"] == "True"
    assert condition(obj, "EndpointReady")["status"] == "True"
    endpoint = await world.describe("endpoint", status["endpointName"])
    assert endpoint is not None
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == status["endpointConfigName"]
    assert status["endpointArn"] == endpoint["EndpointArn"]

    keys = await world.keys("mme/small-llms/")
    assert len(keys) == 2
    models = {m["name"]: m for m in status["models"]}
    assert set(models) == {"bert", "tokenizer"}
    for model in models.values():
        assert model["state"] == "Available"
        assert f"mme/small-llms/{model['targetModel']}" in keys
        assert model["targetModel"].startswith(f"{model['name']}-")
        assert model["targetModel"].endswith(".tar.gz")
        assert len(model["sha256"]) == 64
    assert world.calls["CreateEndpoint"] == 1
    assert world.calls["UpdateEndpoint"] == 0


async def test_create_posts_an_event_saying_what_was_done(world: World) -> None:
    model = await world.python_model("echo")
    await world.apply(world.manifest("evented", [model]))
    await world.ready("evented")

    # kopf names events by generateName, which the emulated API server does not expand:
    # only the first event of a namespace is stored, so look for that one.
    async def posted() -> bool:
        events = await world.events("evented")
        return any(e.get("reason") == "Uploaded" and "echo" in e.get("message", "") for e in events)

    await eventually(posted, "an Uploaded event", timeout=10)


async def test_create_from_a_file_source(world: World) -> None:
    (world.files / "echo").mkdir()
    (world.files / "echo" / "model.py").write_text("# a python model\n")
    model = {
        "name": "echo",
        "source": f"file://{world.files}/echo/model.py",
        "backend": "python",
        "maxBatchSize": 0,
        "instanceGroups": [{"count": 1, "kind": "KIND_CPU"}],
    }
    await world.apply(world.manifest("from-file", [model]))

    obj = await world.ready("from-file")

    [status] = obj["status"]["models"]
    assert await world.keys("mme/from-file/") == [f"mme/from-file/{status['targetModel']}"]
