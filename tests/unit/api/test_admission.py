"""What a GPU multi-model endpoint cannot run is refused at admission, naming the field.

Each case runs `mme-operator validate` (exit 2, one line naming the field) or the parser the
operator uses; the same rules are in the CRD where CEL can express them (test_cel_rules).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mme_operator.api import validate_resource
from mme_operator.api.spec import KNOWN_BACKENDS, UNSERVABLE_BACKENDS
from mme_operator.cli import main
from mme_operator.reconcile.engine import _prepare
from mme_operator.settings import Settings

from tests.unit.api.documents import GOOD, MINIMAL, changed
from tests.unit.api.test_cli import write


def validate(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines `mme-operator validate` prints for DOC, less the file name that starts each;
    asserts it exits 2."""
    file = write(tmp_path, doc)
    assert main(["validate", "-f", file]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith(f"{file}: ") for line in lines), lines
    return [line.removeprefix(f"{file}: ") for line in lines]


def problems(doc: dict[str, Any]) -> list[str]:
    resource, found = validate_resource(doc)
    assert resource is None
    return [str(p) for p in found]


def test_a_second_gpu_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = changed(GOOD, "spec.models.0.instanceGroups.0.gpus", [1])
    assert validate(tmp_path, doc, capsys) == [
        "ml/small-llms: spec.models[0].instanceGroups[0].gpus: [1]: GPU multi-model endpoints "
        "run on single-GPU instances only: gpus may only name GPU 0 (or leave gpus unset)"
    ]
    assert validate_resource(changed(GOOD, "spec.models.0.instanceGroups.0.gpus", [0]))[0]


@pytest.mark.parametrize("backend", ["vllm", "tensorrtllm"])
def test_backends_missing_from_the_mme_image_are_refused(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = validate(tmp_path, changed(GOOD, "spec.models.1.backend", backend), capsys)
    assert len(lines) == 1
    assert lines[0].startswith(
        f"ml/small-llms: spec.models[1].backend: {backend!r} cannot be served"
    )
    assert "single-model endpoint" in lines[0]


def test_known_backends_are_only_those_in_the_image() -> None:
    assert not set(KNOWN_BACKENDS) & set(UNSERVABLE_BACKENDS)
    assert {"python", "onnxruntime", "pytorch", "tensorrt"} <= set(KNOWN_BACKENDS)


def test_a_decoupled_transaction_policy_is_refused_with_the_reason() -> None:
    doc = changed(GOOD, "spec.models.1.modelTransactionPolicy", {"decoupled": True})
    assert problems(doc) == [
        "spec.models[1].modelTransactionPolicy: decoupled models cannot be served: a multi-model "
        "endpoint's invoke path refuses models with a decoupled transaction policy; remove it"
    ]


def tags(count: int) -> dict[str, str]:
    return {f"team-{i}": "ml" for i in range(count)}


def test_51_tags_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(tmp_path, changed(GOOD, "spec.tags", tags(51)), capsys) == [
        "ml/small-llms: spec.tags: 51 tags; at most 47: AWS allows 50 per resource and the "
        "operator adds 3 of its own"
    ]


def test_tags_count_the_operators_own_three() -> None:
    assert validate_resource(changed(GOOD, "spec.tags", tags(47)))[0] is not None
    assert problems(changed(GOOD, "spec.tags", tags(48)))[0].startswith("spec.tags: 48 tags")


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ({"aws:team": "ml"}, "spec.tags: tag key 'aws:team': the prefix aws: is reserved for AWS"),
        ({"AWS:team": "ml"}, "spec.tags: tag key 'AWS:team': the prefix aws: is reserved for AWS"),
        ({"Aws:team": "ml"}, "spec.tags: tag key 'Aws:team': the prefix aws: is reserved for AWS"),
        (
            {"mme-operator.io/owner-uid": "forged"},
            "spec.tags: tag key 'mme-operator.io/owner-uid': the prefix mme-operator.io/ is "
            "reserved for the operator's ownership tags",
        ),
        ({"k" * 129: "v"}, "spec.tags: tag key 'kkkk"),
        ({"": "v"}, "spec.tags: tag key '' must be 1-128 characters"),
        ({"team#1": "v"}, "spec.tags: tag key 'team#1' may hold only letters, digits, spaces"),
        ({"team": "a" * 257}, "spec.tags.team: 257 characters; at most 256 allowed"),
        ({"team": "ml;drop"}, "spec.tags.team: 'ml;drop': tag values may hold only letters"),
    ],
)
def test_tags_aws_refuses_are_refused_up_front(tag: dict[str, str], message: str) -> None:
    found = problems(changed(GOOD, "spec.tags", tag))
    assert len(found) == 1
    assert found[0].startswith(message), found


def test_tags_in_any_script_are_allowed() -> None:
    doc = changed(GOOD, "spec.tags", {"équipe": "ml 日本 +=.:/@_-", "cost center": ""})
    assert validate_resource(doc)[0] is not None


def test_a_dim_beyond_int64_is_refused_before_rendering() -> None:
    assert problems(changed(GOOD, "spec.models.0.inputs.0.dims", [2**63])) == [
        f"spec.models[0].inputs[0].dims[0]: {2**63}: Input should be less than or equal to "
        f"{2**63 - 1}"
    ]
    assert validate_resource(changed(GOOD, "spec.models.0.inputs.0.dims", [2**63 - 1]))[0]


def test_queue_policy_numbers_are_bounded() -> None:
    found = problems(
        changed(GOOD, "spec.models.0.dynamicBatching.defaultQueuePolicy.maxQueueSize", 2**64)
    )
    assert found[0].startswith("spec.models[0].dynamicBatching.defaultQueuePolicy.maxQueueSize")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "spec.models.1.parameters",
            {f"p{i}": "v" for i in range(65)},
            "spec.models[1].parameters: Dictionary should have at most 64 items",
        ),
        (
            "spec.models.1.parameters",
            {"k": "v" * 4097},
            "spec.models[1].parameters.k: 4097 characters; at most 4096 allowed",
        ),
        (
            "spec.models.1.parameters",
            {"k" * 257: "v"},
            "spec.models[1].parameters: parameter name 'kkkk",
        ),
        (
            "spec.environment",
            {f"V{i}": "v" for i in range(91)},
            "spec.environment: Dictionary should have at most 90 items",
        ),
        (
            "spec.environment",
            {"V": "v" * 1025},
            "spec.environment.V: 1025 characters; at most 1024 allowed",
        ),
        ("spec.region", "us-" + "a" * 40 + "-1", "spec.region: 45 characters; at most 32 allowed"),
        (
            "spec.environment",
            {"1-BAD": "v"},
            "spec.environment: variable name '1-BAD' must match ^[a-zA-Z_][a-zA-Z0-9_]*$",
        ),
    ],
)
def test_maps_and_their_strings_are_bounded(path: str, value: Any, message: str) -> None:
    found = problems(changed(GOOD, path, value))
    assert len(found) == 1
    assert found[0].startswith(message), found


def test_a_spec_near_the_api_servers_size_limit_is_refused() -> None:
    # Each key within S3's 1024 bytes; the models together near the API server's limit.
    model = {"name": "m", "source": "s3://src/" + "k" * 1000, "backend": "python"}
    many = [{**model, "name": f"m{i}"} for i in range(800)]
    found = problems(changed(MINIMAL, "spec.models", many))
    assert len(found) == 1
    assert found[0].startswith("spec: the spec is ")
    assert "split the models over several ModelEndpoints" in found[0]


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"spec.tritonVersion": "19.01"},
            "spec.tritonVersion: no SageMaker Triton image is known for '19.01'; supported: ",
        ),
        (
            {"spec.region": "us-nowhere-1"},
            "spec.region: no SageMaker Triton image 24.09 is known in 'us-nowhere-1'; "
            "supported regions: ",
        ),
    ],
)
def test_triton_version_and_region_are_checked_against_the_image_table(
    changes: dict[str, str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = GOOD
    for path, value in changes.items():
        doc = changed(doc, path, value)
    lines = validate(tmp_path, doc, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"ml/small-llms: {line}")
    assert lines[0].endswith("(or set spec.image)")
    # The operator refuses it the same way, before any AWS call.
    assert _prepare(doc, None, Settings()) == [lines[0].removeprefix("ml/small-llms: ")]  # type: ignore[arg-type]
    # With an image of one's own, the table does not matter.
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/custom-triton:1"
    assert main(["validate", "-f", write(tmp_path, changed(doc, "spec.image", image))]) == 0
