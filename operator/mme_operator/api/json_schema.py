"""Strict JSON Schemas of the custom resources, for checkers (kubeconform) and editors.

The API server checks a custom resource against its CRD's structural schema and drops
unknown fields (or, with ``kubectl apply --validate=strict``, refuses them); tools that
never talk to a cluster see neither, so a misspelt field passes them silently. These
schemas are each CRD's ``openAPIV3Schema`` turned into draft-07 JSON Schema of the whole
object (``apiVersion``, ``kind``, ``metadata``, ``spec``, ``status``) with
``additionalProperties: false`` on every object with named fields, in the file layout
kubeconform looks for (``{kind}_{version}.json``, kind in lower case). The CRD is generated
from the pydantic models (:mod:`mme_operator.api.crd`), so these are too; ``schemas/`` holds
the checked-in output of ``mme-operator schemas`` and a test fails when they differ.

CEL rules (``x-kubernetes-validations``) have no JSON Schema form: only the API server and
``mme-operator validate`` check them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mme_operator.api.crd import build_crd, build_model_crd

Schema = dict[str, Any]

DRAFT = "http://json-schema.org/draft-07/schema#"

_STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_TIMESTAMP: Schema = {"type": ["string", "null"], "format": "date-time"}

# Kubernetes' ObjectMeta (meta/v1), every field, unknown ones refused: the CRD says only
# `type: object` (the API server knows the rest), which would let `metadata.lables` pass.
OBJECT_META: Schema = {
    "description": "Standard object metadata (Kubernetes ObjectMeta).",
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "uid": {"type": "string"},
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
                "required": ["apiVersion", "kind", "name", "uid"],
                "additionalProperties": False,
            },
        },
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "selfLink": {"type": "string"},
        "creationTimestamp": _TIMESTAMP,
        "deletionTimestamp": _TIMESTAMP,
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "fieldsType": {"type": "string"},
                    "fieldsV1": {"type": "object"},
                    "manager": {"type": "string"},
                    "operation": {"type": "string"},
                    "subresource": {"type": "string"},
                    "time": _TIMESTAMP,
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


def custom_resource_definitions() -> list[dict[str, Any]]:
    """The project's CRDs, one per kind (ModelEndpoint, Model)."""
    return [build_crd(), build_model_crd()]


def _strict(node: Any) -> Any:
    """One OpenAPI v3.0 (structural) schema node as draft-07 JSON Schema, unknown fields refused."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: _strict(child) for name, child in value.items()}
        elif key in ("enum", "default", "required", "example"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _strict(value)
    # OpenAPI 3.0's boolean exclusive bounds are draft-07's numeric ones.
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True and plain in out:
            out[bound] = out.pop(plain)
        elif out.get(bound) is False:
            del out[bound]
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    open_object = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in out and "additionalProperties" not in out and not open_object:
        out["additionalProperties"] = False
    return out


def resource_schema(crd: dict[str, Any], version: dict[str, Any]) -> Schema:
    """The strict JSON Schema of one served version of ``crd``: the whole object."""
    spec = crd["spec"]
    kind, api_version = spec["names"]["kind"], f"{spec['group']}/{version['name']}"
    body = _strict(version["schema"]["openAPIV3Schema"])
    properties = dict(body.get("properties", {}))
    properties["apiVersion"] = {**properties.get("apiVersion", {}), "enum": [api_version]}
    properties["kind"] = {**properties.get("kind", {}), "enum": [kind]}
    properties["metadata"] = OBJECT_META
    required = ["apiVersion", "kind", "metadata"]
    required += [name for name in body.get("required", []) if name not in required]
    return {
        "$schema": DRAFT,
        "title": f"{kind} ({api_version})",
        "description": body.get("description", kind),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def schema_file_name(crd: dict[str, Any], version: dict[str, Any]) -> str:
    """kubeconform's name for it: ``{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json``."""
    return f"{crd['spec']['names']['kind'].lower()}_{version['name']}.json"


def crd_schemas(crds: Iterable[dict[str, Any]]) -> dict[str, Schema]:
    """File name -> strict schema, for every served version of every CRD in ``crds``."""
    return {
        schema_file_name(crd, version): resource_schema(crd, version)
        for crd in crds
        for version in crd["spec"]["versions"]
        if version.get("served", True)
    }


def schema_files() -> dict[str, str]:
    """File name -> text of the project's schemas, as ``schemas/`` holds them."""
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in crd_schemas(custom_resource_definitions()).items()
    }


def write_schemas(directory: Path) -> list[Path]:
    """Write :func:`schema_files` into ``directory`` (created if missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
