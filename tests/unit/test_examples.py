"""The manifests under examples/ and the packaged demo are valid and render for Triton."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from mme_operator.api import InstanceKind, validate_resource
from mme_operator.demo_models import demo_manifest, demo_models_dir
from mme_operator.triton import default_model_filename, render_model_config

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
# examples/local-demo.yaml is the packaged demo as it reads on this install location.
LOCAL_DEMO_INSTALL_DIR = Path("/usr/local/lib/python3.11/site-packages/mme_operator/demo_models")


def test_the_documented_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "minimal.yaml",
        "small-multi-model.yaml",
        "local-demo.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_valid_model_endpoint(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert len(docs) == 1
    resource, problems = validate_resource(docs[0])
    assert problems == []
    assert resource is not None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_model_of_example_renders_a_triton_config(path: Path) -> None:
    resource, _ = validate_resource(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert resource is not None
    for model in resource.spec.models:
        assert f'name: "{model.name}"' in render_model_config(model)


def test_small_multi_model_example_shows_concurrency_and_batching() -> None:
    doc = yaml.safe_load((EXAMPLES_DIR / "small-multi-model.yaml").read_text(encoding="utf-8"))
    resource, _ = validate_resource(doc)
    assert resource is not None
    assert (resource.metadata.name, resource.metadata.namespace) == ("small-llms", "ml")
    assert resource.spec.instance_type == "ml.g5.xlarge"
    assert resource.spec.autoscaling is not None
    models = resource.spec.models
    assert {m.platform or m.backend for m in models} == {"onnxruntime_onnx", "python"}
    for model in models:
        assert model.source.startswith("s3://")
        assert model.dynamic_batching is not None
        assert model.instance_groups is not None
        assert [(g.count, g.kind) for g in model.instance_groups] == [(2, InstanceKind.KIND_GPU)]


def test_minimal_example_has_one_model_and_only_required_fields() -> None:
    doc = yaml.safe_load((EXAMPLES_DIR / "minimal.yaml").read_text(encoding="utf-8"))
    assert set(doc["spec"]) == {
        "region",
        "executionRoleArn",
        "artifacts",
        "instanceType",
        "models",
    }
    assert len(doc["spec"]["models"]) == 1


def test_local_demo_example_is_the_packaged_demo_rendered_for_reading() -> None:
    example = yaml.safe_load((EXAMPLES_DIR / "local-demo.yaml").read_text(encoding="utf-8"))
    assert example == demo_manifest(LOCAL_DEMO_INSTALL_DIR)


def test_demo_manifest_points_at_model_files_of_this_install() -> None:
    resource, problems = validate_resource(demo_manifest())
    assert problems == []
    assert resource is not None
    spec = resource.spec
    assert (spec.instance_type, spec.region, spec.artifacts.bucket) == (
        "ml.g5.xlarge",
        "us-east-1",
        "mme-demo",
    )
    assert spec.execution_role_arn == "arn:aws:iam::123456789012:role/sagemaker-mme"
    for model in spec.models:
        assert model.source.startswith("file:///")
        path = Path(model.source.removeprefix("file://"))
        assert path.is_file()
        assert path.is_relative_to(demo_models_dir())
        # A CPU-only tritonserver must be able to load every demo model.
        assert model.instance_groups
        assert all(g.kind == InstanceKind.KIND_CPU for g in model.instance_groups)
        assert path.name == default_model_filename(model)


def test_demo_has_a_batched_string_model() -> None:
    resource, _ = validate_resource(demo_manifest())
    assert resource is not None
    [echo] = [m for m in resource.spec.models if m.name == "echo_upper"]
    assert echo.max_batch_size == 8 and echo.dynamic_batching is not None


@pytest.mark.parametrize("name", ["add_sub", "echo_upper"])
def test_demo_model_file_defines_a_triton_python_model(name: str) -> None:
    tree = ast.parse((demo_models_dir() / name / "model.py").read_text(encoding="utf-8"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    methods = {n.name for n in classes["TritonPythonModel"].body if isinstance(n, ast.FunctionDef)}
    assert "execute" in methods
