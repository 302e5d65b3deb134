"""ModelEndpoint documents shared by the API tests: a complete good one and ways to break it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]

# Uses every part of the spec, so that each schema node and CEL rule sees a value.
GOOD: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "small-llms", "namespace": "ml"},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "my-models", "prefix": "mme/small-llms/"},
        "instanceType": "ml.g5.xlarge",
        "instanceCount": 2,
        "environment": {"SAGEMAKER_TRITON_LOG_INFO": "false"},
        "tags": {"team": "ml"},
        "attach": {
            "from": "Selector",
            "selector": {"matchLabels": {"mme-operator.io/models": "true"}},
        },
        "autoscaling": {"minInstances": 1, "maxInstances": 4, "targetInvocationsPerInstance": 600},
        "models": [
            {
                "name": "bert",
                "source": "s3://training-out/bert/model.onnx",
                "platform": "onnxruntime_onnx",
                "maxBatchSize": 32,
                "inputs": [{"name": "input_ids", "dataType": "TYPE_INT64", "dims": [-1]}],
                "outputs": [{"name": "logits", "dataType": "TYPE_FP32", "dims": [2]}],
                "instanceGroups": [{"count": 2, "kind": "KIND_GPU", "gpus": [0]}],
                "dynamicBatching": {
                    "maxQueueDelayMicroseconds": 100,
                    "preferredBatchSize": [8, 16],
                    "priorityLevels": 2,
                    "defaultPriorityLevel": 1,
                    "defaultQueuePolicy": {"timeoutAction": "DELAY", "maxQueueSize": 64},
                },
            },
            {
                "name": "echo",
                "source": "file:///models/echo",
                "backend": "python",
                "parameters": {"EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz"},
                "instanceGroups": [{"kind": "KIND_CPU"}],
            },
        ],
    },
}

# Only what is required: defaults fill in the rest.
MINIMAL: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "tiny"},
    "spec": {
        "region": "eu-west-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/mme",
        "artifacts": {"bucket": "models-eu"},
        "instanceType": "ml.g4dn.xlarge",
        "models": [
            {"name": "resnet", "source": "s3://src/resnet/", "platform": "pytorch_libtorch"}
        ],
    },
}

DELETE = object()


def changed(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of DOC with the value at PATH (``spec.models.0.maxBatchSize``) set or DELETEd."""
    doc = copy.deepcopy(doc)
    node: Any = doc
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return doc


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every ModelEndpoint in ``examples/*.yaml``, as (``file#n``, document)."""
    found = []
    for file in sorted((REPO / "examples").glob("**/*.yaml")):
        for n, doc in enumerate(yaml.safe_load_all(file.read_text()), start=1):
            if isinstance(doc, dict) and doc.get("kind") == "ModelEndpoint":
                found.append((f"{file.relative_to(REPO)}#{n}", doc))
    return found
