"""InvokeEndpoint through a real tritonserver (CPU), when nvidia-pytriton is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mme_operator.local import LocalAWS, TritonServer
from mme_operator.reconcile.loading import LoadVerdict, container_message, judge_invocation

from tests.local.conftest import CONFIG_PBTXT, DELAY, MODEL_PY, Stack, model_archive

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(
        not TritonServer.available(), reason="tritonserver (nvidia-pytriton) not installed"
    ),
]


def test_invoke_runs_a_real_inference() -> None:
    # Rendered for a GPU instance; the local CPU server still loads it.
    gpu_config = CONFIG_PBTXT.replace("KIND_CPU", "KIND_GPU")
    archive = model_archive({"m/config.pbtxt": gpu_config, "m/1/model.py": MODEL_PY})
    with LocalAWS(endpoint_delay=DELAY, triton=True) as aws:
        stack = Stack(aws)
        endpoint = stack.endpoint(stack.config(stack.model()))
        stack.upload("double-v1.tar.gz", archive)
        runtime = aws.client("sagemaker-runtime")
        tensor = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}

        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            TargetModel="double-v1.tar.gz",
            ContentType="application/json",
            Body=json.dumps({"inputs": [tensor]}).encode(),
        )

        answer = json.loads(response["Body"].read())
        assert answer["outputs"][0]["data"] == [2.0, 4.0, 6.0]
        assert answer["outputs"][0]["shape"] == [1, 3]

        # Triton's own refusal comes back as a ModelError carrying its status.
        with pytest.raises(ClientError) as excinfo:
            runtime.invoke_endpoint(
                EndpointName=endpoint,
                TargetModel="double-v1.tar.gz",
                ContentType="application/json",
                Body=json.dumps({"inputs": [{**tensor, "name": "WRONG"}]}).encode(),
            )
        assert excinfo.value.response["Error"]["Code"] == "ModelError"
        assert excinfo.value.response["OriginalStatusCode"] == 400  # type: ignore[typeddict-item]


REPOSITORIES = Path(__file__).resolve().parents[1] / "repositories"
TENSOR = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}


def folder_archive(root: Path) -> bytes:
    """The files under ``root`` as a model archive (paths relative to ``root``)."""
    files = {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    return model_archive(files)


def invoke_error(runtime: Any, endpoint: str, target: str, body: Any) -> ClientError:
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_endpoint(
            EndpointName=endpoint,
            TargetModel=target,
            ContentType="application/json",
            Body=json.dumps(body).encode(),
        )
    return excinfo.value


def test_load_failure_and_refused_input_are_told_apart() -> None:
    broken = MODEL_PY.replace("import numpy", "import no_such_module\nimport numpy")
    with LocalAWS(endpoint_delay=DELAY, triton=True) as aws:
        stack = Stack(aws)
        endpoint = stack.endpoint(stack.config(stack.model()))
        # The config names another model: MME replaces the name with the TargetModel's.
        stack.upload(
            "good.tar.gz",
            model_archive(
                {"m/config.pbtxt": 'name: "other"\n' + CONFIG_PBTXT, "m/1/model.py": MODEL_PY}
            ),
        )
        stack.upload(
            "broken.tar.gz", model_archive({"m/config.pbtxt": CONFIG_PBTXT, "m/1/model.py": broken})
        )
        runtime = aws.client("sagemaker-runtime")

        load = invoke_error(runtime, endpoint, "broken.tar.gz", {"inputs": []})
        refused = invoke_error(runtime, endpoint, "good.tar.gz", {"inputs": []})

    # Both are 400 ModelErrors carrying Triton's {"error": ...}, as MME's container sends.
    for exc in (load, refused):
        assert exc.response["Error"]["Code"] == "ModelError"
        assert exc.response["OriginalStatusCode"] == 400  # type: ignore[typeddict-item]
    assert "version 1 is at UNAVAILABLE state" in container_message(load)
    assert "No module named 'no_such_module'" in container_message(load)
    assert "expected 1 inputs but got 0 inputs" in container_message(refused)
    assert judge_invocation(load).verdict is LoadVerdict.LOAD_FAILED
    assert judge_invocation(refused).verdict is LoadVerdict.LOADED
    assert aws.loaded_models(endpoint) == ["good.tar.gz"]


def test_an_ensemble_of_python_steps_loads_from_one_archive_and_answers() -> None:
    archive = folder_archive(REPOSITORIES / "python_ensemble")
    with LocalAWS(endpoint_delay=DELAY, triton=True) as aws:
        stack = Stack(aws)
        endpoint = stack.endpoint(stack.config(stack.model()))
        stack.upload("pipeline-v1.tar.gz", archive)
        runtime = aws.client("sagemaker-runtime")

        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            TargetModel="pipeline-v1.tar.gz",
            ContentType="application/json",
            Body=json.dumps({"inputs": [TENSOR]}).encode(),
        )
        answer = json.loads(response["Body"].read())
        # (x + 1) * 2: both steps ran, in the ensemble's order.
        assert answer["outputs"][0]["data"] == [4.0, 6.0, 8.0]

        # The same steps in a second archive are shared; a step with other content is refused.
        stack.upload("pipeline-v2.tar.gz", archive)
        runtime.invoke_endpoint(
            EndpointName=endpoint,
            TargetModel="pipeline-v2.tar.gz",
            ContentType="application/json",
            Body=json.dumps({"inputs": [TENSOR]}).encode(),
        )
        changed = REPOSITORIES / "python_ensemble"
        files = {
            str(p.relative_to(changed)): p.read_bytes()
            for p in sorted(changed.rglob("*"))
            if p.is_file()
        }
        files["double/1/model.py"] = files["double/1/model.py"].replace(b"x * 2", b"x * 3")
        stack.upload("pipeline-v3.tar.gz", model_archive(files))
        clash = invoke_error(runtime, endpoint, "pipeline-v3.tar.gz", {"inputs": [TENSOR]})
        assert clash.response["OriginalStatusCode"] == 409  # type: ignore[typeddict-item]
        assert "ensemble step 'double' is already loaded" in container_message(clash)
