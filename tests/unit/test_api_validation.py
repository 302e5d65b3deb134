"""Cross-field rules of the spec, as `mme-operator validate` and the operator report them."""

import copy

import pytest
from mme_operator.api import validate_resource

GOOD = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "small-llms", "namespace": "ml"},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "my-models"},
        "instanceType": "ml.g5.xlarge",
        "models": [
            {
                "name": "bert",
                "source": "s3://training-out/bert/model.onnx",
                "platform": "onnxruntime_onnx",
                "maxBatchSize": 32,
                "instanceGroups": [{"count": 2, "kind": "KIND_GPU"}],
                "dynamicBatching": {
                    "maxQueueDelayMicroseconds": 100,
                    "preferredBatchSize": [8, 16],
                },
            },
            {"name": "echo", "source": "file:///models/echo", "backend": "python"},
        ],
    },
}


def with_change(path: str, value):
    doc = copy.deepcopy(GOOD)
    node = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


def test_good_resource_parses_with_defaults():
    resource, problems = validate_resource(GOOD)
    assert problems == []
    assert resource is not None
    assert resource.spec.instance_count == 1
    assert resource.artifact_prefix == "ml/small-llms/"
    assert resource.endpoint_name == "ml-small-llms-f9c27941"  # readable part + hash


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "spec.models.0.dynamicBatching.preferredBatchSize",
            [8, 64],
            "spec.models[0].dynamicBatching.preferredBatchSize: 64 exceeds maxBatchSize 32",
        ),
        (
            "spec.models.0.maxBatchSize",
            0,
            "spec.models[0].dynamicBatching: dynamic batching needs maxBatchSize > 0",
        ),
        (
            "spec.models.0.instanceGroups",
            [{"count": 1, "kind": "KIND_CPU", "gpus": [0]}],
            "spec.models[0].instanceGroups[0].gpus: gpus may only be set with kind KIND_GPU",
        ),
        (
            "spec.autoscaling",
            {"minInstances": 3, "maxInstances": 2, "targetInvocationsPerInstance": 100},
            "spec.autoscaling.minInstances: 3 exceeds maxInstances 2",
        ),
        ("spec.endpointName", "a" * 64, "spec.endpointName:"),
        ("spec.endpointName", "bad_name", "spec.endpointName: 'bad_name' does not match"),
        ("spec.models.1.name", "bert", "spec.models[1].name: duplicate model name 'bert'"),
        ("spec.models.1.name", "-bad", "spec.models[1].name: '-bad' does not match"),
        (
            "spec.models.1.platform",
            "onnxruntime_onnx",
            "spec.models[1]: set at most one of platform",
        ),
        (
            "spec.models.1.source",
            "ftp://host/x",
            "spec.models[1].source: 'ftp://host/x' does not match",
        ),
        (
            "spec.executionRoleArn",
            "not-an-arn",
            "spec.executionRoleArn: 'not-an-arn' does not match",
        ),
        (
            "spec.artifacts.bucket",
            "Bad_Bucket",
            "spec.artifacts.bucket: 'Bad_Bucket' does not match",
        ),
        ("spec.instanceType", "g5.xlarge", "spec.instanceType: 'g5.xlarge' does not match"),
        (
            "spec.instanceCount",
            0,
            "spec.instanceCount: 0: Input should be greater than or equal to 1",
        ),
        ("spec.region", KeyError, "spec.region: required field is missing"),
        ("spec.models.0.instanceGroups", [{"count": 0}], "spec.models[0].instanceGroups[0].count"),
        ("spec.models.0.maxBatchSize", -1, "spec.models[0].maxBatchSize"),
        ("spec.models.0.bogus", 1, "spec.models[0].bogus: unknown field"),
        ("spec.deletionPolicy", "Keep", "spec.deletionPolicy"),
        # The API server refuses quoted numbers and booleans; so does validate.
        (
            "spec.models.0.maxBatchSize",
            "32",
            "spec.models[0].maxBatchSize: '32': Input should be a valid integer",
        ),
        (
            "spec.models.1.warmup",
            "true",
            "spec.models[1].warmup: 'true': Input should be a valid boolean",
        ),
    ],
)
def test_bad_spec_names_the_field(path, value, expected):
    resource, problems = validate_resource(with_change(path, value))
    assert resource is None
    lines = [str(p) for p in problems]
    assert any(line.startswith(expected) for line in lines), lines


def test_long_kubernetes_names_give_valid_distinct_endpoint_names():
    a = with_change("metadata.name", "x" * 100 + ".a")
    b = with_change("metadata.name", "x" * 100 + ".b")
    name_a = validate_resource(a)[0].endpoint_name
    name_b = validate_resource(b)[0].endpoint_name
    assert name_a != name_b
    for name in (name_a, name_b):
        assert len(name) <= 63
        assert all(c.isalnum() or c == "-" for c in name)
