"""The CRD's CEL rules, evaluated as the API server would: they agree with `validate`."""

from __future__ import annotations

from typing import Any

import pytest
from mme_operator.api import validate_resource
from mme_operator.api.crd import build_crd
from mme_operator.api.spec import SINGLE_GPU_MESSAGE

from tests.unit.api.cel_eval import (
    apply_defaults,
    cel_violations,
    evaluate_rule,
    is_transition_rule,
    rule_sites,
)
from tests.unit.api.documents import DELETE, GOOD, MINIMAL, changed, example_documents

UNSERVABLE_MESSAGE = (
    "backends vllm and tensorrtllm are not in the SageMaker Triton image used for multi-model "
    "endpoints (and MME refuses decoupled models): serve them from a single-model endpoint"
)
RESERVED_TAG_MESSAGE = (
    "tag keys starting with aws: are reserved by AWS and mme-operator.io/ by the operator"
)
SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("doc", [GOOD, MINIMAL], ids=["good", "minimal"])
def test_good_documents_pass_every_rule(doc: dict[str, Any]) -> None:
    assert cel_violations(SCHEMA, doc) == []


def test_the_good_document_exercises_every_rule() -> None:
    sites = rule_sites(SCHEMA, apply_defaults(SCHEMA, GOOD))
    ran = {site.rule["rule"] for site in sites if not is_transition_rule(site.rule)}
    declared = {
        rule["rule"]
        for node in _all_nodes(SCHEMA)
        for rule in node.get("x-kubernetes-validations", [])
        if not is_transition_rule(rule)
    }
    assert ran == declared


def _all_nodes(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema]
    for child in schema.get("properties", {}).values():
        found += _all_nodes(child)
    if "items" in schema:
        found += _all_nodes(schema["items"])
    return found


@pytest.mark.parametrize(
    ("where", "doc"), [pytest.param(where, doc, id=where) for where, doc in example_documents()]
)
def test_examples_pass_every_rule(where: str, doc: dict[str, Any]) -> None:
    assert cel_violations(SCHEMA, doc) == [], where


def test_rules_see_defaults_as_the_api_server_applies_them() -> None:
    doc = apply_defaults(SCHEMA, MINIMAL)
    model = doc["spec"]["models"][0]
    assert model["maxBatchSize"] == 0
    assert doc["spec"]["instanceCount"] == 1
    assert doc["spec"]["deletionPolicy"] == "Delete"
    assert "endpointName" not in doc["spec"]
    # Without defaulting, a rule that reads maxBatchSize would fail to evaluate.
    with pytest.raises(Exception, match="maxBatchSize"):
        evaluate_rule("self.maxBatchSize > 0", MINIMAL["spec"]["models"][0])


PRIORITY = "spec.models.0.dynamicBatching.defaultPriorityLevel"
BATCHING_RULE = "every dynamicBatching.preferredBatchSize must be <= maxBatchSize"
BAD = [
    pytest.param(
        {"spec.models.0.dynamicBatching.preferredBatchSize": [8, 64]},
        [f"spec.models[0].dynamicBatching.preferredBatchSize: {BATCHING_RULE}"],
        id="preferred-batch-size-over-max",
    ),
    pytest.param(
        {"spec.models.0.maxBatchSize": 0, "spec.models.0.dynamicBatching.preferredBatchSize": []},
        ["spec.models[0].dynamicBatching: dynamicBatching needs maxBatchSize > 0"],
        id="batching-without-batches",
    ),
    pytest.param(
        {"spec.models.0.instanceGroups.0.kind": "KIND_CPU"},
        ["spec.models[0].instanceGroups[0].gpus: gpus may only be set when kind is KIND_GPU"],
        id="gpus-on-cpu",
    ),
    pytest.param(
        {"spec.autoscaling.minInstances": 5},
        ["spec.autoscaling.minInstances: minInstances must be <= maxInstances"],
        id="min-over-max-instances",
    ),
    pytest.param(
        {"spec.models.1.platform": "tensorrt_plan"},
        [
            "spec.models[1]: set at most one of platform or backend (neither: the source's own "
            "config.pbtxt says)"
        ],
        id="platform-and-backend",
    ),
    pytest.param(
        {PRIORITY: 3},
        [
            "spec.models[0].dynamicBatching.defaultPriorityLevel: "
            "defaultPriorityLevel must not exceed priorityLevels"
        ],
        id="default-priority-over-levels",
    ),
    pytest.param(
        {"spec.instanceCount": 9},
        [
            "spec.instanceCount: instanceCount must lie within "
            "autoscaling.minInstances..maxInstances"
        ],
        id="instance-count-above-autoscaling",
    ),
    pytest.param(
        {"spec.models.0.instanceGroups.0.gpus": [0, 1]},
        [f"spec.models[0].instanceGroups[0].gpus: {SINGLE_GPU_MESSAGE}"],
        id="second-gpu",
    ),
    pytest.param(
        {"spec.models.1.backend": "vllm"},
        [f"spec.models[1].backend: {UNSERVABLE_MESSAGE}"],
        id="vllm-backend",
    ),
    pytest.param(
        {"spec.models.1.backend": "tensorrtllm"},
        [f"spec.models[1].backend: {UNSERVABLE_MESSAGE}"],
        id="tensorrtllm-backend",
    ),
    pytest.param(
        {"spec.tags": {"aws:team": "ml"}},
        [f"spec.tags: {RESERVED_TAG_MESSAGE}"],
        id="aws-tag-prefix",
    ),
    pytest.param(
        {"spec.tags": {"mme-operator.io/owner-uid": "forged"}},
        [f"spec.tags: {RESERVED_TAG_MESSAGE}"],
        id="operator-tag-prefix",
    ),
    pytest.param(
        {"spec.tags": {"k" * 129: "v"}},
        ["spec.tags: tag keys must be 1-128 characters"],
        id="long-tag-key",
    ),
    pytest.param(
        {"spec.environment": {"": "v"}},
        ["spec.environment: environment variable names must be 1-1024 characters"],
        id="empty-environment-name",
    ),
    pytest.param(
        {"spec.models.1.parameters": {"": "v"}},
        ["spec.models[1].parameters: parameter names must be 1-256 characters"],
        id="empty-parameter-name",
    ),
]


def with_changes(changes: dict[str, Any]) -> dict[str, Any]:
    doc = GOOD
    for path, value in changes.items():
        doc = changed(doc, path, value)
    return doc


@pytest.mark.parametrize(("changes", "violations"), BAD)
def test_bad_documents_break_their_rule(changes: dict[str, Any], violations: list[str]) -> None:
    assert cel_violations(SCHEMA, with_changes(changes)) == violations


@pytest.mark.parametrize(("changes", "violations"), BAD)
def test_cel_and_validate_name_the_same_field(
    changes: dict[str, Any], violations: list[str]
) -> None:
    """The API server (CEL) and `mme-operator validate` point at the same field."""
    _, problems = validate_resource(with_changes(changes))
    cel_paths = {violation.split(": ")[0] for violation in violations}
    assert problems
    assert {problem.path for problem in problems} <= cel_paths


def test_instance_count_below_autoscaling_uses_the_defaulted_count() -> None:
    # instanceCount is left out (defaults to 1) while autoscaling starts at 2.
    doc = changed(changed(GOOD, "spec.instanceCount", DELETE), "spec.autoscaling.minInstances", 2)
    assert cel_violations(SCHEMA, doc) == [
        "spec.instanceCount: instanceCount must lie within autoscaling.minInstances..maxInstances"
    ]


def test_empty_gpu_list_is_allowed_on_cpu() -> None:
    doc = changed(GOOD, "spec.models.1.instanceGroups.0.gpus", [])
    assert cel_violations(SCHEMA, doc) == []
