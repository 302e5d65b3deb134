"""Model repositories packaged by the operator load and answer in a real CPU tritonserver:
a Python-backend directory given by name + source only, and an ensemble of Python steps."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from mme_operator.api import ModelSpec
from mme_operator.artifacts import open_source, package_model
from mme_operator.local import LocalAWS, TritonServer
from mme_operator.local.triton import python_backend_problem
from mme_operator.triton import default_model_filename, render_model_config

from tests.local.conftest import DELAY, Stack

MODELS = Path(__file__).resolve().parents[1] / "models"
INPUTS = [
    {"name": "INPUT0", "datatype": "FP32", "shape": [4], "data": [1, 2, 3, 4]},
    {"name": "INPUT1", "datatype": "FP32", "shape": [4], "data": [10, 20, 30, 40]},
]

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(
        not TritonServer.available() or python_backend_problem() is not None,
        reason=f"tritonserver with the Python backend unavailable: {python_backend_problem()}",
    ),
]


def packaged(name: str, source: Path, tmp_path: Path) -> Path:
    model = ModelSpec.model_validate({"name": name, "source": source.as_uri()})
    archive = package_model(
        name,
        render_model_config(model),
        open_source(model.source, file_roots=["/"]),
        default_model_filename(model),
        tmp_path / f"{name}.tar.gz",
    )
    return archive.path


def outputs(answer: dict[str, object]) -> dict[str, list[float]]:
    return {o["name"]: o["data"] for o in answer["outputs"]}  # type: ignore[attr-defined, index]


def test_a_python_directory_given_by_name_and_source_loads_and_answers(tmp_path: Path) -> None:
    archive = packaged("add_sub", MODELS / "add_sub", tmp_path)
    with LocalAWS(endpoint_delay=DELAY, triton=True) as aws:
        stack = Stack(aws)
        endpoint = stack.endpoint(stack.config(stack.model()))
        stack.upload("add_sub-v1.tar.gz", archive.read_bytes())
        response = aws.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint,
            TargetModel="add_sub-v1.tar.gz",
            ContentType="application/json",
            Body=json.dumps({"inputs": INPUTS}).encode(),
        )
        answer = json.loads(response["Body"].read())
    assert outputs(answer) == {"OUTPUT0": [11, 22, 33, 44], "OUTPUT1": [-9, -18, -27, -36]}


def test_an_ensemble_of_python_steps_packaged_as_one_archive_loads_and_answers(
    tmp_path: Path,
) -> None:
    archive = packaged("pipeline", MODELS / "add_sub_ensemble", tmp_path)
    repository = tmp_path / "repository"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(repository, filter="data")
    assert sorted(p.name for p in repository.iterdir()) == ["add_sub", "pipeline", "scale"]
    with TritonServer(model_repository=repository) as server:
        # Explicit model control: loading the ensemble loads the steps it names.
        server.load(repository / "pipeline")
        answer = server.infer("pipeline", {"inputs": INPUTS})
    assert outputs(answer) == {"SCALED_SUM": [110, 220, 330, 440]}


def test_typed_triton_fields_over_a_source_config_load_and_answer(tmp_path: Path) -> None:
    # Sequence batching with control inputs, Triton's own warm-up (run while loading), a
    # version policy and a response cache setting, merged over add_sub's own config.
    model = ModelSpec.model_validate(
        {
            "name": "stateful",
            "source": (MODELS / "add_sub").as_uri(),
            "sequenceBatching": {
                "maxSequenceIdleMicroseconds": 5000000,
                "controlInput": [
                    {
                        "name": "START",
                        "control": [{"kind": "CONTROL_SEQUENCE_START", "fp32FalseTrue": [0, 1]}],
                    },
                    {
                        "name": "CORRID",
                        "control": [{"kind": "CONTROL_SEQUENCE_CORRID", "dataType": "TYPE_UINT64"}],
                    },
                ],
                "direct": {},
            },
            "modelWarmup": [
                {
                    "name": "zeros",
                    "batchSize": 1,
                    "inputs": {
                        name: {"dataType": "TYPE_FP32", "dims": [4], "zeroData": True}
                        for name in ("INPUT0", "INPUT1")
                    },
                }
            ],
            "versionPolicy": {"latest": {"numVersions": 1}},
            "responseCache": {"enable": False},
        }
    )
    archive = package_model(
        model.name,
        render_model_config(model),
        open_source(model.source, file_roots=["/"]),
        default_model_filename(model),
        tmp_path / "stateful.tar.gz",
    )
    repository = tmp_path / "repository"
    with tarfile.open(archive.path, "r:gz") as tar:
        tar.extractall(repository, filter="data")
    with TritonServer(model_repository=repository) as server:
        server.load(repository / "stateful")
        config = server.model_config("stateful")
        answer = server.infer(
            "stateful",
            {
                "parameters": {"sequence_id": 7, "sequence_start": True, "sequence_end": True},
                "inputs": INPUTS,
            },
        )
    controls = [c["name"] for c in config["sequence_batching"]["control_input"]]
    assert controls == ["START", "CORRID"]
    assert [w["name"] for w in config["model_warmup"]] == ["zeros"]
    assert outputs(answer)["OUTPUT0"] == [11, 22, 33, 44]
