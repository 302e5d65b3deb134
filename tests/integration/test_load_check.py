"""Ready means loadable: each new TargetModel is loaded once, in a real tritonserver (CPU)
behind the local SageMaker, and what Triton answers decides Ready."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from mme_operator.local import TritonServer

from tests.integration.conftest import World, condition

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(
        not TritonServer.available(), reason="tritonserver (nvidia-pytriton) not installed"
    ),
]

GOOD_PY = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            out = pb_utils.Tensor("OUTPUT0", (x * 2).astype(np.float32))
            responses.append(pb_utils.InferenceResponse([out]))
        return responses
"""
BROKEN_PY = "import no_such_module\n" + GOOD_PY


async def python_model(world: World, name: str, code: str) -> dict[str, object]:
    model = await world.python_model(name)
    model["source"] = await world.put_source(f"{name}/model.py", code)
    return model


async def invoke(world: World, endpoint: str, target: str, body: object) -> ClientError | None:
    runtime = world.env.aws.client("sagemaker-runtime")
    try:
        await world.aws(
            runtime.invoke_endpoint,
            EndpointName=endpoint,
            TargetModel=target,
            ContentType="application/json",
            Body=json.dumps(body).encode(),
        )
    except ClientError as exc:
        return exc
    return None


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_broken_model_py_is_load_failed_with_a_warning_and_fixing_it_heals(
    world: World,
) -> None:
    await world.apply(world.manifest("broken", [await python_model(world, "add", BROKEN_PY)]))

    failed = await world.wait_for(
        "broken",
        lambda obj: condition(obj, "ModelsWarm").get("reason") == "LoadFailed",
        "ModelsWarm=False LoadFailed",
        timeout=60,
    )
    [model] = failed["status"]["models"]
    assert model["state"] == "LoadFailed"
    assert model["loaded"] is False
    assert "No module named 'no_such_module'" in model["message"]
    assert condition(failed, "ModelsWarm")["status"] == "False"
    ready = condition(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "LoadFailed")
    assert "No module named 'no_such_module'" in ready["message"]
    assert failed["status"]["phase"] == "Failed"
    warnings = [e for e in await world.events("broken") if e["type"] == "Warning"]
    assert any(
        e["reason"] == "LoadFailed" and "no_such_module" in e["message"] for e in warnings
    ), warnings
    # Not invoked again each drift interval: the outcome is kept per TargetModel.
    invocations = world.calls["InvokeEndpoint"]
    await asyncio.sleep(3)  # three drift intervals, each a pass
    assert world.calls["InvokeEndpoint"] == invocations

    # The user fixes the source: a new archive, loaded and checked, and Ready.
    await world.put_source("add/model.py", GOOD_PY)
    healed = await world.ready("broken", timeout=60)
    [model] = healed["status"]["models"]
    assert model["state"] == "Available" and model["loaded"] is True
    assert model["targetModel"] != failed["status"]["models"][0]["targetModel"]
    assert condition(healed, "ModelsWarm")["reason"] == "Loaded"
    endpoint = healed["status"]["endpointName"]
    assert model["targetModel"] in world.env.aws.loaded_models(endpoint)


async def test_a_good_model_is_ready_only_once_it_loaded(world: World) -> None:
    # SageMaker fails the first invocations: the model's load is not confirmed yet.
    world.env.aws.faults.error(
        "InternalFailure",
        "An exception occurred while sending request to model.",
        500,
        operations="InvokeEndpoint",
    )
    await world.apply(world.manifest("good", [await python_model(world, "double", GOOD_PY)]))
    waiting = await world.wait_for(
        "good",
        lambda obj: condition(obj, "ModelsWarm").get("reason") == "WarmUpFailed",
        "load check failed, retried",
        timeout=60,
    )
    assert condition(waiting, "EndpointReady")["status"] == "True"
    assert condition(waiting, "Ready")["status"] == "False"
    assert waiting["status"]["models"][0]["state"] == "Loading"

    world.env.aws.faults.reset()
    ready = await world.ready("good", timeout=60)
    [model] = ready["status"]["models"]
    assert model["state"] == "Available" and model["loaded"] is True
    endpoint = ready["status"]["endpointName"]
    assert world.env.aws.loaded_models(endpoint) == [model["targetModel"]]


async def test_a_model_that_refuses_the_probe_input_counts_as_loaded(world: World) -> None:
    # warmup: true sends zeros of the declared shape; this model refuses them at run time.
    refusing = GOOD_PY.replace("x = pb_utils", "raise ValueError('zeros refused')\n            x")
    model = await python_model(world, "picky", refusing)
    model["warmup"] = True
    plain = await python_model(world, "plain", GOOD_PY)
    await world.apply(world.manifest("picky", [model, plain]))

    ready = await world.ready("picky", timeout=60)
    picky, plain_status = ready["status"]["models"]
    assert picky["state"] == plain_status["state"] == "Available"
    assert picky["loaded"] is plain_status["loaded"] is True
    assert picky["warmedUp"] is True
    endpoint = ready["status"]["endpointName"]
    # What the load checks got: the model's own refusal, and Triton's refusal of no inputs.
    refused = await invoke(
        world,
        endpoint,
        picky["targetModel"],
        {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 1], "data": [0]}]},
    )
    assert refused is not None and "zeros refused" in refused.response["Error"]["Message"]
    empty = await invoke(world, endpoint, plain_status["targetModel"], {"inputs": []})
    assert empty is not None and "expected 1 inputs but got 0" in empty.response["Error"]["Message"]
    assert not [e for e in await world.events("picky") if e["type"] == "Warning"]


# A Python-backend directory with its own config: the warm-up's inputs are nowhere in the spec.
SOURCE_CONFIG = """\
name: "recorder"
backend: "python"
max_batch_size: 4
input [
  { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1, 3 ] },
  { name: "TEXT" data_type: TYPE_STRING dims: [ 1 ] },
  { name: "HINT" data_type: TYPE_FP32 dims: [ 1 ] optional: true }
]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1, 3 ] } ]
instance_group [{ kind: KIND_CPU }]
"""
RECORDING_PY = """\
import json

import triton_python_backend_utils as pb_utils

SEEN = {seen!r}


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            with open(SEEN, "a") as f:
                seen = {{"INPUT0": list(x.shape), "TEXT": [t.decode() for t in text.flat]}}
                f.write(json.dumps(seen) + "\\n")
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x * 2)]))
        return responses
"""


def recorder(world: World) -> tuple[dict[str, object], Path]:
    """A ``warmup: true`` model given by name + source, and the file its model.py writes."""
    directory = world.files / "recorder"
    (directory / "1").mkdir(parents=True)
    seen = world.files / "seen.jsonl"
    (directory / "config.pbtxt").write_text(SOURCE_CONFIG)
    (directory / "1" / "model.py").write_text(RECORDING_PY.format(seen=str(seen)))
    return {"name": "recorder", "source": directory.as_uri(), "warmup": True}, seen


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_directory_given_by_name_and_source_is_warmed_up_with_its_config_s_inputs(
    world: World,
) -> None:
    model, seen = recorder(world)
    await world.apply(world.manifest("recorder", [model]))

    ready = await world.ready("recorder", timeout=60)
    [status] = ready["status"]["models"]
    assert status["warmedUp"] is True and status["loaded"] is True
    assert condition(ready, "ModelsWarm")["reason"] == "WarmedUp"
    # The model ran on the generated inputs: batch 1, -1 as 1, a short string; HINT left out.
    ran = [json.loads(line) for line in seen.read_text().splitlines()]
    assert ran and all(r == {"INPUT0": [1, 1, 3], "TEXT": ["0"]} for r in ran), ran
    # Its config was read back from the archive once; the steady state reads nothing more.
    calls = dict(world.calls)
    await asyncio.sleep(3)
    assert world.calls["GetObject"] == calls["GetObject"]
    assert world.calls["InvokeEndpoint"] == calls["InvokeEndpoint"]


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_an_archive_config_that_cannot_be_read_back_is_retried_not_warmed_up(
    world: World,
) -> None:
    model, seen = recorder(world)
    world.env.aws.faults.error(
        "AccessDenied", "Access Denied", 403, operations="GetObject", service="s3"
    )
    await world.apply(world.manifest("unread", [model]))
    waiting = await world.wait_for(
        "unread",
        lambda obj: condition(obj, "ModelsWarm").get("reason") == "WarmUpFailed",
        "ModelsWarm=False WarmUpFailed",
        timeout=60,
    )
    assert "s3:GetObject" in condition(waiting, "ModelsWarm")["message"]
    assert waiting["status"]["models"][0].get("warmedUp") is not True
    assert not seen.exists()  # no request without the config's inputs was sent
    assert world.calls["InvokeEndpoint"] == 0

    world.env.aws.faults.reset()
    ready = await world.ready("unread", timeout=60)
    assert ready["status"]["models"][0]["warmedUp"] is True
    # Every request the model saw had the config's inputs. (A retry pass that waited on the
    # object's lock may repeat the warm-up from the status it read before: one or two lines.)
    ran = [json.loads(line) for line in seen.read_text().splitlines()]
    assert ran and all(r == {"INPUT0": [1, 1, 3], "TEXT": ["0"]} for r in ran), ran
