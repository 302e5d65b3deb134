"""Input S3 and SageMaker would refuse is refused first, by `validate` and the operator alike
(MME-FACTS #21), with one line that never repeats a secret."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from mme_operator.api import validate_resource
from mme_operator.api.aws_input import bucket_name_problem

from tests.unit.api.documents import MINIMAL, changed
from tests.unit.api.test_cli import run_cli


def problems(doc: dict[str, Any]) -> list[str]:
    _, found = validate_resource(doc)
    return [str(p) for p in found]


def with_source(uri: str) -> dict[str, Any]:
    doc = copy.deepcopy(MINIMAL)
    doc["spec"]["models"][0]["source"] = uri
    return doc


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "My-Bucket",
        "-bucket",
        "bucket-",
        "my..bucket",
        "192.168.5.4",
        "xn--bucket",
        "sthree-bucket",
        "bucket-s3alias",
        "bucket--ol-s3",
        "my_bucket",
    ],
)
def test_bucket_names_s3_refuses_are_refused(name: str) -> None:
    assert bucket_name_problem(name) is not None
    found = problems(changed(MINIMAL, "spec.artifacts.bucket", name))
    assert len(found) == 1 and found[0].startswith("spec.artifacts.bucket: "), found
    found = problems(with_source(f"s3://{name}/m.onnx"))
    assert len(found) == 1 and found[0].startswith("spec.models[0].source: "), found


@pytest.mark.parametrize("name", ["abc", "my-models.eu-1", "a" * 63, "1-bucket"])
def test_valid_bucket_names_pass(name: str) -> None:
    assert bucket_name_problem(name) is None
    assert problems(changed(MINIMAL, "spec.artifacts.bucket", name)) == []


def test_keys_over_1024_bytes_of_utf8_are_refused() -> None:
    # 400 characters, 1200 bytes: the byte count is S3's limit, not the length.
    found = problems(with_source("s3://src/" + "€" * 400))
    assert found == [
        "spec.models[0].source: the source's key is 1200 bytes of UTF-8; S3 keys are at most 1024"
    ]
    prefix = "é" * 510 + "/"  # 511 characters (the CRD's limit is 512), 1021 bytes
    found = problems(changed(MINIMAL, "spec.artifacts.prefix", prefix))
    assert len(found) == 1 and "spec.artifacts.prefix" in found[0] and "1024" in found[0], found
    assert problems(with_source("s3://src/" + "k" * 1024)) == []


@pytest.mark.parametrize("bad", ["a\nb/", "a\tb/", "a\x7fb/", "a\x85b/"])
def test_control_characters_in_the_prefix_are_refused(bad: str) -> None:
    found = problems(changed(MINIMAL, "spec.artifacts.prefix", bad))
    assert len(found) == 1 and found[0].startswith("spec.artifacts.prefix: "), found


@pytest.mark.parametrize("value", ["line\nbreak", "nul\x00", "esc\x1b[31m", "c1\x9b"])
def test_control_characters_in_environment_values_are_refused(value: str) -> None:
    found = problems(changed(MINIMAL, "spec.environment", {"SOME_VAR": value}))
    assert len(found) == 1 and found[0].startswith("spec.environment: "), found
    assert "control character" in found[0]


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://h:99999/x", "port"),
        ("https://h:0/x", "port"),
        ("https://user:SECRET@host/m", "user info"),
        ("https://user:SECRET@host:99999/m", "port"),
        ("file://host/path", "no host"),
        ("file://localhost/path", "no host"),
        ("https://[::1/x", "valid URL"),
        ("ftp://host/x", "does not match"),
    ],
)
def test_malformed_sources_are_one_line_without_the_secret(uri: str, says: str) -> None:
    found = problems(with_source(uri))
    assert len(found) == 1 and found[0].startswith("spec.models[0].source: "), found
    assert says in found[0]
    assert "SECRET" not in found[0]


def test_validate_refuses_them_with_exit_2_and_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump(with_source("https://user:SECRET@host/m")))
    done = run_cli("validate", "-f", str(path))
    assert done.returncode == 2
    assert "SECRET" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL, sort_keys=False)
    path = tmp_path / "dup.yaml"
    # A second spec.instanceCount: PyYAML keeps the last, silently.
    path.write_text(
        text.replace("spec:\n", "spec:\n  instanceCount: 9\n", 1).replace(
            "  instanceCount: 9\n", "  instanceCount: 9\n  instanceCount: 1\n", 1
        )
    )
    done = run_cli("validate", "-f", str(path))
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "duplicate key 'instanceCount'" in lines[0], lines


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    from mme_operator.safe_yaml import load_documents

    assert load_documents("base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n") == [
        {"base": {"x": 1}, "m": {"x": 2}}
    ]


def test_an_integer_of_9000_digits_is_exit_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    text = yaml.safe_dump(MINIMAL, sort_keys=False)
    big = text.replace("spec:\n", "spec:\n  instanceCount: " + "9" * 9000 + "\n", 1)
    path.write_text(text + "---\n" + big)
    done = run_cli("validate", "-f", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "too large" in lines[0], lines
    assert len(lines[0]) < 300
