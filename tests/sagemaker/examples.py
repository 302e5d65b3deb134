"""A valid ModelEndpoint to vary in tests."""

from __future__ import annotations

import copy
from typing import Any

from mme_operator.api import ModelEndpoint, parse_resource

REGION = "us-east-1"

GOOD: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "small-llms", "namespace": "ml", "uid": "uid-1234"},
    "spec": {
        "region": REGION,
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "my-models", "prefix": "mme/small-llms/"},
        "instanceType": "ml.g5.xlarge",
        "instanceCount": 1,
        "models": [
            {
                "name": "bert",
                "source": "s3://training-out/bert/model.onnx",
                "platform": "onnxruntime_onnx",
                "maxBatchSize": 32,
            }
        ],
    },
}


def make_resource(metadata: dict[str, Any] | None = None, **spec_changes: Any) -> ModelEndpoint:
    """GOOD with some metadata and spec fields (camelCase keys) replaced."""
    doc = copy.deepcopy(GOOD)
    doc["metadata"].update(metadata or {})
    doc["spec"].update(spec_changes)
    return parse_resource(doc)
