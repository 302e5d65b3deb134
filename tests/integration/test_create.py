"""A user applies a ModelEndpoint and gets a serving endpoint with one archive per model."""

from __future__ import annotations

from tests.integration.conftest import MODEL_PY, World, condition, eventually


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


async def test_create_posts_one_event_per_pass_saying_what_was_done(world: World) -> None:
    models = [await world.python_model(f"echo{i}") for i in range(5)]
    await world.apply(world.manifest("evented", models))
    await world.ready("evented")

    async def uploads_told() -> bool:
        events = await world.events("evented")
        return any("uploaded model" in e.get("message", "") for e in events)

    await eventually(uploads_told, "an event about the uploads", timeout=10)
    events = await world.events("evented")
    [told] = [e for e in events if "uploaded model" in e.get("message", "")]
    assert told["type"] == "Normal"
    assert told["reason"] == "Reconciled"
    assert "Uploaded x5: uploaded model 'echo0'" in told["message"]
    assert "and 2 more" in told["message"]
    assert "creating endpoint" in told["message"]
    # One event per pass that did something, not one per model.
    assert len(events) < len(models)


async def test_create_from_a_file_source(world: World) -> None:
    (world.files / "echo").mkdir()
    # A model Triton loads: the endpoint is Ready only once it did.
    (world.files / "echo" / "model.py").write_text(MODEL_PY)
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
