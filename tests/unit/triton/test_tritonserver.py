"""Rendered configs and the demo models loaded into a real tritonserver (CPU).

The server is the one shipped in the ``nvidia-pytriton`` wheel (extra ``triton``), started
by the same code as the demo's (``mme_operator.local.triton``); without it these tests are
skipped. They show what the schema check alone cannot: that Triton's C++ parser reads our
escaping the same way, and that the demo models load and answer.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mme_operator.api import ModelSpec, parse_resource
from mme_operator.demo_models import demo_manifest
from mme_operator.local.triton import TritonServer
from mme_operator.triton import default_model_filename, render_model_config

from tests.unit.triton.cases import TRICKY_STRING

pytestmark = [pytest.mark.triton, pytest.mark.slow]


def write_model(repository: Path, model: ModelSpec) -> None:
    """The layout the artifacts packager produces for a single-file source."""
    version_dir = repository / model.name / "1"
    version_dir.mkdir(parents=True)
    (repository / model.name / "config.pbtxt").write_text(
        render_model_config(model), encoding="utf-8"
    )
    shutil.copy(model.source.removeprefix("file://"), version_dir / default_model_filename(model))


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    if not TritonServer.available():
        pytest.skip("tritonserver not installed (pip install 'mme-operator[triton]')")
    repository = tmp_path_factory.mktemp("triton") / "models"
    demo = parse_resource(demo_manifest())
    for model in demo.spec.models:
        write_model(repository, model)
    [echo] = [m for m in demo.spec.models if m.name == "echo_upper"]
    write_model(
        repository,
        echo.model_copy(update={"name": "echo_tricky", "parameters": {"tricky": TRICKY_STRING}}),
    )
    with TritonServer(model_repository=repository) as server:
        for model_dir in sorted(repository.iterdir()):
            server.load(model_dir)
        yield server


def outputs(response: dict[str, object]) -> dict[str, object]:
    return {o["name"]: o["data"] for o in response["outputs"]}  # type: ignore[attr-defined]


def test_add_sub_adds_and_subtracts(triton: TritonServer) -> None:
    a = [1.0, 2.0, 3.0, 4.0]
    b = [0.5, 0.5, 0.5, 8.0]
    request = {
        "inputs": [
            {"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": a},
            {"name": "INPUT1", "shape": [4], "datatype": "FP32", "data": b},
        ]
    }
    result = outputs(triton.infer("add_sub", request))
    assert result["OUTPUT0"] == [1.5, 2.5, 3.5, 12.0]
    assert result["OUTPUT1"] == [0.5, 1.5, 2.5, -4.0]


def test_echo_upper_upper_cases_a_batch_of_strings(triton: TritonServer) -> None:
    text = {
        "name": "TEXT",
        "shape": [2, 2],
        "datatype": "BYTES",
        "data": ["héllo", "world", "a", "ß"],
    }
    result = outputs(triton.infer("echo_upper", {"inputs": [text]}))
    assert result["UPPER"] == ["HÉLLO", "WORLD", "A", "SS"]


def test_triton_reads_the_batching_and_instances_we_rendered(triton: TritonServer) -> None:
    config = triton.model_config("echo_upper")
    assert config["max_batch_size"] == 8
    assert config["dynamic_batching"]["preferred_batch_size"] == [4, 8]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 500
    assert [(g["count"], g["kind"]) for g in config["instance_group"]] == [(2, "KIND_CPU")]


def test_triton_reads_escaped_parameter_strings_exactly(triton: TritonServer) -> None:
    config = triton.model_config("echo_tricky")
    assert config["parameters"]["tricky"]["string_value"] == TRICKY_STRING
