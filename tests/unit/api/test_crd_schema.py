"""Documents against the CRD's openAPIV3Schema, checked with a JSON Schema validator.

The API server prunes unknown fields; with ``kubectl apply --validate=strict`` (the
default since 1.27) it rejects them instead, which ``additionalProperties: false`` on
every object with properties models here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import re2
from mme_operator.api import (
    Condition,
    ConditionStatus,
    ModelEndpointStatus,
    ModelState,
    ModelStatus,
    Phase,
    validate_resource,
)
from mme_operator.api.crd import build_crd
from pydantic import BaseModel

from tests.unit.api.documents import DELETE, GOOD, MINIMAL, changed, example_documents


def strict_json_schema(node: Any) -> Any:
    """The openAPIV3Schema as plain JSON Schema: no x-kubernetes-*, unknown fields refused."""
    if isinstance(node, list):
        return [strict_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: (value if key in ("enum", "default", "required") else strict_json_schema(value))
        for key, value in node.items()
        if not key.startswith("x-kubernetes-")
    }
    if "properties" in out:
        out["properties"] = {k: strict_json_schema(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False
    return out


def _re2_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` as the API server matches it: Go's RE2 syntax (``\\p{L}``), not Python's."""
    if isinstance(instance, str) and not re2.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Re2Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _re2_pattern}
)
VALIDATOR = Re2Validator(
    strict_json_schema(build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in VALIDATOR.iter_errors(doc)
    ]


@pytest.mark.parametrize("doc", [GOOD, MINIMAL], ids=["good", "minimal"])
def test_inline_documents_are_accepted(doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == []


@pytest.mark.parametrize(
    ("where", "doc"), [pytest.param(where, doc, id=where) for where, doc in example_documents()]
)
def test_examples_are_accepted(where: str, doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == [], where
    assert validate_resource(doc)[1] == [], where


def test_a_full_status_is_kept() -> None:
    """Every status field the operator writes is in the schema (else the server drops it)."""
    status = ModelEndpointStatus(
        observed_generation=3,
        phase=Phase.READY,
        conditions=[
            Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason="Reconciled",
                message="ok",
                observed_generation=3,
                last_transition_time="2025-01-01T00:00:00Z",
            )
        ],
        endpoint_name="ml-small-llms",
        endpoint_arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/ml-small-llms",
        endpoint_status="InService",
        endpoint_config_name="ml-small-llms-0a1b2c3d",
        failed_endpoint_config_name="ml-small-llms-deadbeef",
        model_count=2,
        models=[
            ModelStatus(
                name="bert",
                target_model="bert-0a1b2c3d.tar.gz",
                s3_key="mme/small-llms/bert-0a1b2c3d.tar.gz",
                sha256="0" * 64,
                state=ModelState.AVAILABLE,
                message="loaded",
            )
        ],
        message="2 models available",
    )
    assert schema_errors({**copy.deepcopy(GOOD), "status": status.to_k8s()}) == []


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (ModelEndpointStatus, ["status"]),
        (Condition, ["status", "conditions", "items"]),
        (ModelStatus, ["status", "models", "items"]),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_every_status_field_has_a_place_in_the_schema(
    model: type[BaseModel], path: list[str]
) -> None:
    node = VALIDATOR.schema
    for part in path:
        node = node[part] if part == "items" else node["properties"][part]
    aliases = {field.alias or name for name, field in model.model_fields.items()}
    assert aliases == set(node["properties"])


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.models.0.platform", "onnx", "spec.models.0.platform: 'onnx' is not one of"),
        ("spec.deletionPolicy", "delete", "spec.deletionPolicy: 'delete' is not one of"),
        ("spec.models.1.instanceGroups.0.kind", "GPU", "kind: 'GPU' is not one of"),
        ("spec.region", "US-EAST-1", "spec.region: 'US-EAST-1' does not match"),
        ("spec.instanceType", "g5.xlarge", "spec.instanceType: 'g5.xlarge' does not match"),
        ("spec.models.0.name", "-bert", "spec.models.0.name: '-bert' does not match"),
        ("spec.artifacts.prefix", "/abs/", "spec.artifacts.prefix: '/abs/' does not match"),
        ("spec.instanceCount", 0, "spec.instanceCount: 0 is less than the minimum of 1"),
        ("spec.models.0.maxBatchSize", -1, "maxBatchSize: -1 is less than the minimum of 0"),
        ("spec.models.0.instanceGroups.0.count", 65, "count: 65 is greater than the maximum"),
        ("spec.models.0.dynamicBatching.preferredBatchSize", [1] * 33, "is too long"),
        ("spec.models.0.inputs.0.name", "", "inputs.0.name: '' should be non-empty"),
        ("spec.region", DELETE, "'region' is a required property"),
        ("spec.models.0.batchSize", 8, "Additional properties are not allowed ('batchSize'"),
        ("spec.tags", {"team": 1}, "spec.tags.team: 1 is not of type 'string'"),
    ],
)
def test_bad_documents_are_rejected(path: str, value: Any, expected: str) -> None:
    doc = changed(GOOD, path, value)
    errors = schema_errors(doc)
    assert any(expected in error for error in errors), errors
    # The operator's own validation agrees: what the API server refuses, `validate` refuses.
    assert validate_resource(doc)[1] != []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.models.0.maxBatchSize", "32", "maxBatchSize: '32' is not of type 'integer'"),
        ("spec.models.0.warmup", "true", "warmup: 'true' is not of type 'boolean'"),
    ],
)
def test_quoted_scalars_are_rejected_by_type(path: str, value: Any, expected: str) -> None:
    # The API server does not coerce; pydantic's lax mode (validate_resource) does.
    errors = schema_errors(changed(GOOD, path, value))
    assert any(expected in error for error in errors), errors
