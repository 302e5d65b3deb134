"""schemas/: strict JSON Schemas of the whole custom resource, for kubeconform and editors.

kubeconform itself runs over examples/ with these schemas in tests/deploy/test_chart_checkers.py;
here a JSON Schema validator shows what they accept and refuse.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import re2
from mme_operator.api.crd import build_crd
from mme_operator.api.json_schema import OBJECT_META, schema_files

from tests.unit.api.documents import GOOD, MINIMAL, REPO, changed, example_documents

SCHEMAS = REPO / "schemas"
SCHEMA = json.loads((SCHEMAS / "modelendpoint_v1alpha1.json").read_text())


def _re2_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` as kubeconform (Go) matches it: RE2 syntax (``\\p{L}``), not Python's."""
    if isinstance(instance, str) and not re2.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Re2Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _re2_pattern})
VALIDATOR = Re2Validator(SCHEMA)


def errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in VALIDATOR.iter_errors(doc)
    ]


def test_checked_in_schemas_are_generated_from_the_models() -> None:
    generated = schema_files()
    assert sorted(generated) == ["model_v1alpha1.json", "modelendpoint_v1alpha1.json"]
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.json")}
    stale = sorted(
        name
        for name in generated.keys() | on_disk.keys()
        if generated.get(name) != on_disk.get(name)
    )
    assert stale == [], f"schemas/ differ from the models: run `make crd` ({stale})"


def test_the_schema_is_draft_7_and_covers_the_whole_object() -> None:
    # Not check_schema(): Python's `re` cannot compile RE2's \p{L} (format "regex").
    meta = jsonschema.Draft7Validator(jsonschema.Draft7Validator.META_SCHEMA)
    assert list(meta.iter_errors(SCHEMA)) == []
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert set(SCHEMA["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert SCHEMA["required"] == ["apiVersion", "kind", "metadata", "spec"]
    crd_spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert set(SCHEMA["properties"]["spec"]["properties"]) == set(crd_spec["spec"]["properties"])


def test_every_object_with_fields_refuses_unknown_ones() -> None:
    def open_objects(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                yield path
            for key, child in node.items():
                yield from open_objects(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from open_objects(child, f"{path}/{index}")

    assert list(open_objects(SCHEMA, "")) == []


def test_object_meta_has_exactly_kubernetes_fields() -> None:
    definitions = json.loads(
        (
            Path(kubernetes_validate.__file__).parent
            / "kubernetes-json-schema"
            / "v1.33.0-local-strict"
            / "_definitions.json"
        ).read_text()
    )["$defs"]
    kubernetes = definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert set(OBJECT_META["properties"]) == set(kubernetes)
    owner = definitions["io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"]["properties"]
    assert set(OBJECT_META["properties"]["ownerReferences"]["items"]["properties"]) == set(owner)
    managed = definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"]["properties"]
    assert set(OBJECT_META["properties"]["managedFields"]["items"]["properties"]) == set(managed)


@pytest.mark.parametrize("doc", [GOOD, MINIMAL], ids=["good", "minimal"])
def test_good_documents_are_accepted(doc: dict[str, Any]) -> None:
    assert errors(doc) == []


@pytest.mark.parametrize(
    ("where", "doc"), [pytest.param(where, doc, id=where) for where, doc in example_documents()]
)
def test_examples_are_accepted(where: str, doc: dict[str, Any]) -> None:
    assert errors(doc) == [], where


def test_a_status_the_operator_writes_is_accepted() -> None:
    doc = copy.deepcopy(GOOD)
    doc["metadata"].update(
        uid="0f0e0d0c-0000-4000-8000-000000000000",
        generation=3,
        creationTimestamp="2026-12-01T00:00:00Z",
        finalizers=["mme-operator.io/finalizer"],
        annotations={"kopf.zalando.org/last-handled-configuration": "{}"},
    )
    doc["status"] = {
        "observedGeneration": 3,
        "phase": "Ready",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": "ok",
                "observedGeneration": 3,
                "lastTransitionTime": "2026-12-01T00:00:00Z",
            }
        ],
        "endpointName": "ml-small-llms",
        "modelCount": 2,
    }
    assert errors(doc) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        # The misspelling a structural schema silently drops.
        (
            "spec.models.0.sequenceBatchin",
            {},
            "Additional properties are not allowed ('sequenceBatchin'",
        ),
        (
            "spec.instanceTpye",
            "ml.g5.xlarge",
            "Additional properties are not allowed ('instanceTpye'",
        ),
        ("spec.artifacts.bukcet", "b", "Additional properties are not allowed ('bukcet'"),
        ("metadata.lables", {"a": "b"}, "Additional properties are not allowed ('lables'"),
        ("metadata.labels", {"team": 1}, "metadata.labels.team: 1 is not of type 'string'"),
        ("statuss", {}, "Additional properties are not allowed ('statuss'"),
        ("kind", "ModelEndPoint", "kind: 'ModelEndPoint' is not one of ['ModelEndpoint']"),
        ("apiVersion", "mme-operator.io/v1", "apiVersion: 'mme-operator.io/v1' is not one of"),
        ("spec.models.0.platform", "onnx", "spec.models.0.platform: 'onnx' is not one of"),
        ("spec.tags", {"team": "a|b"}, "spec.tags.team: 'a|b' does not match"),
        # OpenAPI's boolean exclusiveMinimum became draft-07's number.
        ("spec.models.0.expectedRequestsPerSecond", 0, "less than or equal to the minimum of 0"),
        ("spec", None, "spec: None is not of type 'object'"),
    ],
)
def test_bad_documents_are_refused(path: str, value: Any, expected: str) -> None:
    found = errors(changed(GOOD, path, value))
    assert any(expected in error for error in found), found


def test_mme_operator_schemas_writes_the_checked_in_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "schemas", "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = ["modelendpoint_v1alpha1.json", "model_v1alpha1.json"]
    assert done.stdout.splitlines() == [str(tmp_path / "out" / name) for name in names]
    for name in names:
        assert (tmp_path / "out" / name).read_text() == (SCHEMAS / name).read_text()


def test_mme_operator_schemas_into_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "schemas", "-o", str(blocker)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert str(blocker) in done.stderr
