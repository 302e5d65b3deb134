"""Model repositories packaged as they declare: a model directory's own config.pbtxt is the
base, the spec's fields override it (and are reported), an ensemble ships with its steps in
one archive, and what MME cannot serve is refused with the reason before any upload."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from mme_operator.api import ModelSpec
from mme_operator.artifacts import InvalidSourceError, open_source, package_model
from mme_operator.artifacts.packaging import PackagedArchive
from mme_operator.settings import Settings
from mme_operator.triton import default_model_filename, parse_model_config, render_model_config
from mme_operator.triton.schema import model_config_pb2

from tests.artifacts.conftest import make_tar
from tests.unit.api.documents import GOOD, changed

MODELS = Path(__file__).resolve().parents[1] / "models"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate(fields)


def package(model: ModelSpec, tmp_path: Path) -> PackagedArchive:
    source = open_source(model.source, file_roots=["/"])
    return package_model(
        model.name,
        render_model_config(model),
        source,
        default_model_filename(model),
        tmp_path / "out" / f"{model.name}.tar.gz",
    )


def archive_members(path: Path) -> dict[str, bytes | None]:
    with tarfile.open(path, "r:gz") as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def archived_config(archive: PackagedArchive, name: str) -> str:
    data = archive_members(archive.path)[f"{name}/config.pbtxt"]
    assert data is not None
    return data.decode()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.pbtxt"
    if UPDATE:
        path.write_text(text, encoding="utf-8", newline="")
    assert text == path.read_bytes().decode("utf-8")


def copy_tree(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "src" / source.name
    shutil.copytree(source, target)
    return target


# --- one model directory with its own config ----------------------------------------------


def test_a_python_model_directory_given_by_name_and_source_keeps_its_own_config(
    tmp_path: Path,
) -> None:
    model = spec(name="add_sub", source=(MODELS / "add_sub").as_uri())
    archive = package(model, tmp_path)
    text = archived_config(archive, "add_sub")
    check_golden("add_sub_name_and_source", text)
    config = parse_model_config(text)
    source = parse_model_config((MODELS / "add_sub" / "config.pbtxt").read_text())
    assert config == source  # inputs and outputs kept: nothing replaced
    assert [t.name for t in config.input] == ["INPUT0", "INPUT1"]
    assert [t.name for t in config.output] == ["OUTPUT0", "OUTPUT1"]
    assert archive.config_changes == ()
    assert sorted(archive_members(archive.path)) == [
        "add_sub",
        "add_sub/1",
        "add_sub/1/model.py",
        "add_sub/config.pbtxt",
    ]


def test_spec_fields_override_the_source_config_field_by_field_and_are_reported(
    tmp_path: Path,
) -> None:
    model = spec(
        name="adder",
        source=(MODELS / "add_sub").as_uri(),
        backend="python",
        maxBatchSize=8,
        instanceGroups=[{"count": 2, "kind": "KIND_CPU"}],
        dynamicBatching={"maxQueueDelayMicroseconds": 500},
        parameters={"tokenizer": "none"},
    )
    archive = package(model, tmp_path)
    text = archived_config(archive, "adder")
    check_golden("add_sub_overridden", text)
    config = parse_model_config(text)
    assert config.name == "adder"
    assert config.max_batch_size == 8
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (2, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    ]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert [t.name for t in config.input] == ["INPUT0", "INPUT1"]  # the source's, untouched
    assert archive.config_changes == (
        'name: "add_sub" -> "adder" (from the spec)',
        "max_batch_size: added 8 (from the spec)",
        "instance_group: { kind: KIND_CPU } -> { count: 2 kind: KIND_CPU } (from the spec)",
        "dynamic_batching: added { max_queue_delay_microseconds: 500 } (from the spec)",
        "parameters['tokenizer']: added 'none' (from the spec)",
    )


def test_a_source_config_that_is_not_a_triton_config_is_refused(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub", tmp_path)
    (src / "config.pbtxt").write_text('name: "add_sub"\nbackend: "python"\ninputs [ ]\n')
    with pytest.raises(InvalidSourceError, match=r"config.pbtxt: .*does not parse.*inputs"):
        package(spec(name="add_sub", source=src.as_uri()), tmp_path)


def test_a_decoupled_source_config_is_refused_with_the_reason(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub", tmp_path)
    with (src / "config.pbtxt").open("a") as f:
        f.write("model_transaction_policy { decoupled: true }\n")
    with pytest.raises(InvalidSourceError, match="decoupled transaction policy") as excinfo:
        package(spec(name="add_sub", source=src.as_uri()), tmp_path)
    assert "single-model endpoint" in str(excinfo.value)


def test_a_source_config_read_from_a_tar_gz_after_the_files_it_describes(tmp_path: Path) -> None:
    # A .tar.gz is read forward only; its config.pbtxt (last here) is read during the scan.
    model_py = (MODELS / "add_sub" / "1" / "model.py").read_bytes()
    config = (MODELS / "add_sub" / "config.pbtxt").read_bytes()
    src = make_tar(
        tmp_path / "add_sub.tar.gz",
        [("add_sub/1/model.py", model_py), ("add_sub/config.pbtxt", config)],
    )
    archive = package(spec(name="add_sub", source=src.as_uri()), tmp_path)
    assert parse_model_config(archived_config(archive, "add_sub")) == parse_model_config(
        config.decode()
    )
    assert archive_members(archive.path)["add_sub/1/model.py"] == model_py


def test_a_single_directory_of_version_directories_without_config_is_configured_by_the_spec(
    tmp_path: Path,
) -> None:
    src = make_tar(tmp_path / "resnet.tar.gz", [("resnet/2/model.onnx", b"w2")])
    model = spec(name="resnet", source=src.as_uri(), platform="onnxruntime_onnx")
    archive = package(model, tmp_path)
    assert archived_config(archive, "resnet") == render_model_config(model)
    assert archive_members(archive.path)["resnet/2/model.onnx"] == b"w2"


# --- ensembles ------------------------------------------------------------------------------


def test_an_ensemble_and_its_python_steps_are_packaged_as_one_archive(tmp_path: Path) -> None:
    model = spec(name="pipeline", source=(MODELS / "add_sub_ensemble").as_uri())
    archive = package(model, tmp_path)
    members = archive_members(archive.path)
    assert sorted(members) == [
        "add_sub",
        "add_sub/1",
        "add_sub/1/model.py",
        "add_sub/config.pbtxt",
        "pipeline",
        "pipeline/1",
        "pipeline/config.pbtxt",
        "scale",
        "scale/1",
        "scale/1/model.py",
        "scale/config.pbtxt",
    ]
    assert members["pipeline/1"] is None  # the ensemble's (empty) version directory
    # Steps keep their own configs byte for byte; the served ensemble takes the model's name.
    step = MODELS / "add_sub_ensemble" / "scale" / "config.pbtxt"
    assert members["scale/config.pbtxt"] == step.read_bytes()
    text = archived_config(archive, "pipeline")
    check_golden("ensemble_served", text)
    config = parse_model_config(text)
    assert (config.name, config.platform) == ("pipeline", "ensemble")
    assert [s.model_name for s in config.ensemble_scheduling.step] == ["add_sub", "scale"]


def test_an_ensemble_wrapped_in_one_repository_directory_is_found(tmp_path: Path) -> None:
    src = tmp_path / "repo"
    shutil.copytree(MODELS / "add_sub_ensemble", src / "model_repository")
    archive = package(spec(name="pipeline", source=src.as_uri()), tmp_path)
    assert "scale/1/model.py" in archive_members(archive.path)


def test_an_ensemble_whose_step_is_missing_is_refused(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub_ensemble", tmp_path)
    shutil.rmtree(src / "scale")
    with pytest.raises(InvalidSourceError) as excinfo:
        package(spec(name="pipeline", source=src.as_uri()), tmp_path)
    assert "model 'scale'" in str(excinfo.value)
    assert "the step model is not in the source" in str(excinfo.value)


def test_an_ensemble_whose_tensor_map_does_not_match_its_step_is_refused(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub_ensemble", tmp_path)
    config = src / "ensemble_add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace('key: "X" value: "sum"', 'key: "IN" value: "sum"'))
    with pytest.raises(InvalidSourceError) as excinfo:
        package(spec(name="pipeline", source=src.as_uri()), tmp_path)
    message = str(excinfo.value)
    assert "input_map key 'IN' is not an input of 'scale' (it declares X)" in message
    assert "input_map leaves out the step's inputs X" in message


def test_an_ensemble_output_no_step_produces_is_refused(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub_ensemble", tmp_path)
    config = src / "ensemble_add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace('value: "SCALED_SUM"', 'value: "OTHER"'))
    with pytest.raises(InvalidSourceError, match="ensemble output 'SCALED_SUM' is produced by no"):
        package(spec(name="pipeline", source=src.as_uri()), tmp_path)


def test_several_model_directories_without_an_ensemble_are_refused(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub_ensemble", tmp_path)
    shutil.rmtree(src / "ensemble_add_sub")
    with pytest.raises(InvalidSourceError, match="none is an ensemble: MME serves one model"):
        package(spec(name="pipeline", source=src.as_uri()), tmp_path)


def test_a_decoupled_step_is_refused(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub_ensemble", tmp_path)
    with (src / "scale" / "config.pbtxt").open("a") as f:
        f.write("model_transaction_policy { decoupled: true }\n")
    with pytest.raises(InvalidSourceError, match=r"scale/config.pbtxt: decoupled models"):
        package(spec(name="pipeline", source=src.as_uri()), tmp_path)


# --- python execution environments -----------------------------------------------------------


def conda_pack_stand_in(path: Path) -> bytes:
    """A small valid .tar.gz shaped like a conda-pack environment (bin/python, activate)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [
            ("bin/activate", b"# conda-pack activate\n"),
            ("bin/python3", b"#!/bin/sh\n"),
            ("lib/python3.10/site-packages/numpy/__init__.py", b""),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_a_conda_pack_environment_is_packaged_inside_the_model_directory(tmp_path: Path) -> None:
    src = copy_tree(MODELS / "add_sub", tmp_path)
    env = conda_pack_stand_in(src / "env.tar.gz")
    model = spec(
        name="add_sub",
        source=src.as_uri(),
        parameters={"EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz"},
    )
    archive = package(model, tmp_path)
    members = archive_members(archive.path)
    assert members["add_sub/env.tar.gz"] == env  # beside 1/, where $$TRITON_MODEL_DIRECTORY is
    config = parse_model_config(archived_config(archive, "add_sub"))
    value = config.parameters["EXECUTION_ENV_PATH"].string_value
    assert value == "$$TRITON_MODEL_DIRECTORY/env.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(members["add_sub/env.tar.gz"] or b""), mode="r:gz") as t:
        assert "bin/activate" in t.getnames()


def test_an_execution_environment_missing_from_the_model_directory_is_refused(
    tmp_path: Path,
) -> None:
    model = spec(
        name="add_sub",
        source=(MODELS / "add_sub").as_uri(),
        parameters={"EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz"},
    )
    with pytest.raises(InvalidSourceError, match=r"names env\.tar\.gz, which is not in the model"):
        package(model, tmp_path)


def test_an_execution_environment_outside_the_archive_is_refused(tmp_path: Path) -> None:
    model = spec(
        name="add_sub",
        source=(MODELS / "add_sub").as_uri(),
        parameters={"EXECUTION_ENV_PATH": "/opt/envs/py310.tar.gz"},
    )
    with pytest.raises(InvalidSourceError, match=r"write \$\$TRITON_MODEL_DIRECTORY/<file>"):
        package(model, tmp_path)


def test_the_python_env_example_packages_its_environment_in_the_archive(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "python-env" / "tokenizer"
    src = copy_tree(example, tmp_path)
    env = conda_pack_stand_in(src / "env.tar.gz")  # what build-env.sh makes with conda-pack
    archive = package(spec(name="tokenizer", source=src.as_uri()), tmp_path)
    members = archive_members(archive.path)
    assert members["tokenizer/env.tar.gz"] == env
    assert "tokenizer/1/model.py" in members
    config = parse_model_config(archived_config(archive, "tokenizer"))
    assert config.parameters["EXECUTION_ENV_PATH"].string_value == (
        "$$TRITON_MODEL_DIRECTORY/env.tar.gz"
    )
    # Without the tarball the example is refused before any upload.
    (src / "env.tar.gz").unlink()
    with pytest.raises(InvalidSourceError, match="not in the model directory"):
        package(spec(name="tokenizer", source=src.as_uri()), tmp_path / "again")


def test_an_ensemble_under_an_s3_prefix_is_packaged_with_its_steps(
    s3: Any, bucket: str, settings: Settings, tmp_path: Path
) -> None:
    root = MODELS / "add_sub_ensemble"
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = f"repos/pipeline/{path.relative_to(root).as_posix()}"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    model = spec(name="pipeline", source=f"s3://{bucket}/repos/pipeline/")
    source = open_source(model.source, s3_client_factory=lambda _: s3, settings=settings)
    archive = package_model(
        "pipeline", render_model_config(model), source, "model", tmp_path / "p.tar.gz"
    )
    members = archive_members(archive.path)
    assert members["scale/config.pbtxt"] == (root / "scale" / "config.pbtxt").read_bytes()
    assert members["add_sub/1/model.py"] == (root / "add_sub" / "1" / "model.py").read_bytes()
    assert parse_model_config(archived_config(archive, "pipeline")).platform == "ensemble"


def test_render_reads_an_s3_source_with_credentials(
    s3: Any, bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    for name in ("config.pbtxt", "1/model.py"):
        body = (MODELS / "add_sub" / name).read_bytes()
        s3.put_object(Bucket=bucket, Key=f"render/add_sub/{name}", Body=body)
    doc = changed(
        GOOD, "spec.models", [{"name": "add-sub", "source": f"s3://{bucket}/render/add_sub/"}]
    )
    manifest = tmp_path / "in.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    env = {
        **os.environ,
        "MME_AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "render", "-f", str(manifest), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = parse_model_config((out / "add-sub" / "config.pbtxt").read_text())
    assert [t.name for t in config.input] == ["INPUT0", "INPUT1"]  # read from S3, kept
    assert "source not read" not in result.stderr
