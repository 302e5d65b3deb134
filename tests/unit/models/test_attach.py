"""Who may attach to an endpoint, name conflicts, and the endpoint's counts (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from mme_operator.api.model import ModelResource, validate_model
from mme_operator.api.spec import AttachSpec
from mme_operator.api.status import ModelState, ModelStatus, Reason
from mme_operator.reconcile.attach import (
    admit,
    attached_counts,
    model_resource_status,
    namespace_admitted,
)

LABELS = {"team-a": {"mme-operator.io/models": "true", "tier": "gold"}, "team-b": {}}


def model(
    namespace: str, object_name: str, created: str = "2026-12-01T00:00:00Z", **spec: Any
) -> ModelResource:
    doc = {
        "metadata": {
            "name": object_name,
            "namespace": namespace,
            "uid": f"{namespace}-{object_name}-{created}",
            "creationTimestamp": created,
        },
        "spec": {
            "endpointRef": {"name": "shared", "namespace": "ml-platform"},
            "source": f"s3://{namespace}-training/{object_name}/model.onnx",
            "platform": "onnxruntime_onnx",
            **spec,
        },
    }
    found, problems = validate_model(doc)
    assert found is not None, problems
    return found


def attach(**spec: Any) -> AttachSpec:
    return AttachSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "namespace", "admitted"),
    [
        (None, "ml-platform", True),
        (None, "team-a", False),
        ({"from": "Same"}, "team-a", False),
        ({"from": "All"}, "team-b", True),
        (
            {"from": "Selector", "selector": {"matchLabels": {"mme-operator.io/models": "true"}}},
            "team-a",
            True,
        ),
        (
            {"from": "Selector", "selector": {"matchLabels": {"mme-operator.io/models": "true"}}},
            "team-b",
            False,
        ),
        # Gateway API: Selector admits the endpoint's own namespace only when it matches.
        ({"from": "Selector", "selector": {"matchLabels": {"x": "y"}}}, "ml-platform", False),
        (
            {
                "from": "Selector",
                "selector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]
                },
            },
            "team-a",
            True,
        ),
        (
            {
                "from": "Selector",
                "selector": {
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gold"]}]
                },
            },
            "team-a",
            False,
        ),
        (
            {
                "from": "Selector",
                "selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            },
            "team-b",
            False,
        ),
        (
            {
                "from": "Selector",
                "selector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
            },
            "team-b",
            True,
        ),
    ],
)
def test_attach_follows_allowed_routes(
    spec: dict[str, Any] | None, namespace: str, admitted: bool
) -> None:
    rule = attach(**spec) if spec is not None else None
    assert namespace_admitted(rule, "ml-platform", namespace, LABELS.get(namespace, {})) is admitted


def test_a_namespace_not_admitted_is_refused_and_its_labels_read_once() -> None:
    asked: list[str] = []

    def labels_of(namespace: str) -> dict[str, str]:
        asked.append(namespace)
        return LABELS.get(namespace, {})

    rule = attach(
        **{"from": "Selector", "selector": {"matchLabels": {"mme-operator.io/models": "true"}}}
    )
    models = [model("team-a", "bert"), model("team-b", "bert"), model("team-b", "gpt")]
    admission = admit("ml-platform/shared", rule, models, labels_of)
    assert [m.served_name for m in admission.admitted] == ["team-a/bert"]
    assert {r.reason for r in admission.refused.values()} == {Reason.NOT_ALLOWED_BY_ENDPOINT}
    assert sorted(asked) == ["team-a", "team-b"]


def test_the_older_of_two_same_named_models_wins() -> None:
    older = model("team-a", "bert", "2026-12-01T00:00:00Z")
    newer = model("team-a", "other", "2026-12-02T00:00:00Z", name="bert")
    elsewhere = model("team-b", "bert", "2026-12-03T00:00:00Z")
    admission = admit(
        "ml-platform/shared", attach(**{"from": "All"}), [newer, elsewhere, older], dict
    )
    assert [m.metadata.uid for m in admission.admitted] == [
        older.metadata.uid,
        elsewhere.metadata.uid,
    ]
    refusal = admission.refused[newer.metadata.uid]
    assert refusal.reason == Reason.NAME_CONFLICT and "team-a/bert" in refusal.message


def test_the_endpoint_counts_its_models_never_lists_them() -> None:
    a, b, c = model("team-a", "a"), model("team-a", "b"), model("team-a", "c")
    common = {"endpoint": "ml-platform/shared", "endpoint_name": "ep", "region": "us-east-1"}
    ready = model_resource_status(
        a,
        served=ModelStatus(
            name="team-a/a", target_model="team-a/a-0.tar.gz", state=ModelState.AVAILABLE
        ),
        endpoint_ready=True,
        **common,
    )
    failed = model_resource_status(
        b,
        served=ModelStatus(name="team-a/b", state=ModelState.FAILED, message="no such key"),
        endpoint_ready=True,
        **common,
    )
    refused = model_resource_status(
        c,
        served=None,
        endpoint_ready=True,
        refusal=admit("ml-platform/shared", None, [c], dict).refused[c.metadata.uid],
        **common,
    )
    assert ready.target_model == "team-a/a-0.tar.gz" and ready.endpoint_name == "ep"
    reasons = {
        s.name: [(x.type, x.status.value, x.reason) for x in s.conditions or []]
        for s in (ready, failed, refused)
    }
    assert reasons["team-a/a"] == [
        ("Accepted", "True", "Attached"),
        ("Ready", "True", "ModelAvailable"),
    ]
    assert reasons["team-a/b"][1] == ("Ready", "False", "SourceError")
    assert reasons["team-a/c"][0] == ("Accepted", "False", "NotAllowedByEndpoint")
    counts = attached_counts([ready, failed, refused])
    assert counts is not None
    assert (counts.accepted, counts.ready, counts.failed, counts.refused) == (2, 1, 1, 1)
    assert attached_counts([]) is None


def test_a_models_source_is_checked_against_its_own_namespaces_rule() -> None:
    from mme_operator.tenancy import ArchiveLocation, TenancyPolicy, model_source_problem

    policy = TenancyPolicy.model_validate(
        {
            "defaults": {"s3Sources": ["s3://{namespace}-training/"]},
            # The platform's own namespace may read anything: a Model does not inherit it.
            "rules": [{"namespaces": ["ml-platform"], "s3Sources": ["*"]}],
        }
    )
    own = model_source_problem(policy, "team-a", "bert", "s3://team-a-training/bert/m.onnx")
    assert own is None
    theirs = model_source_problem(policy, "team-a", "bert", "s3://team-b-training/secret.onnx")
    assert theirs is not None and theirs.startswith("spec.source:")
    archives = [ArchiveLocation("uid", "2026-12-01T00:00:00Z", "team-a-training", "mme/shared/")]
    inside = model_source_problem(
        policy, "team-a", "bert", "s3://team-a-training/mme/shared/x.tar.gz", archives
    )
    assert inside is not None and "archive location" in inside
    assert model_source_problem(TenancyPolicy(mode="open"), "team-a", "b", "s3://x/y") is None
