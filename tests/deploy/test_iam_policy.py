"""deploy/iam-policy.json allows every AWS call the operator's code makes, and no more than it says.

The calls are found in the source, not listed by hand: every ``<x>.<method>(...)`` whose
method is a boto3 client method of SageMaker, SageMaker Runtime, S3 or Application Auto
Scaling (names from botocore's own service models), plus ``get_paginator("list_x")`` and
the S3 transfer methods. Code added later is covered without touching this test.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "mme_operator"
POLICY = ROOT / "deploy" / "iam-policy.json"
# The local SageMaker emulates AWS; its methods are not calls to AWS.
EXCLUDED = {PACKAGE / "local"}

# botocore service name -> IAM action prefix.
SERVICES = {
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "s3": "s3",
    "application-autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
}
# S3 API operations whose IAM action has another name; the rest map one to one.
S3_ACTIONS = {
    "HeadObject": ["s3:GetObject"],
    "HeadBucket": ["s3:ListBucket"],
    "ListObjects": ["s3:ListBucket"],
    "ListObjectsV2": ["s3:ListBucket"],
    "ListObjectVersions": ["s3:ListBucketVersions"],
    "CreateMultipartUpload": ["s3:PutObject"],
    "UploadPart": ["s3:PutObject"],
    "CompleteMultipartUpload": ["s3:PutObject"],
    "UploadPartCopy": ["s3:PutObject", "s3:GetObject"],
    "CopyObject": ["s3:PutObject", "s3:GetObject"],
    "ListParts": ["s3:ListMultipartUploadParts"],
    "ListMultipartUploads": ["s3:ListBucketMultipartUploads"],
    "DeleteObjects": ["s3:DeleteObject"],
    "GetObjectAttributes": ["s3:GetObject", "s3:GetObjectAttributes"],
}
# boto3's managed transfers: one call, several S3 operations (multipart on large files).
TRANSFER_ACTIONS = {
    "upload_file": ["s3:PutObject", "s3:AbortMultipartUpload"],
    "upload_fileobj": ["s3:PutObject", "s3:AbortMultipartUpload"],
    "download_file": ["s3:GetObject"],
    "download_fileobj": ["s3:GetObject"],
}


# Client method names that are also methods of everyday Python objects (``pattern.search``)
# say nothing about AWS; calls of these are not counted.
AMBIGUOUS = {
    name
    for obj in (str, bytes, dict, list, set, re.compile(""), Path(), ast.AST())
    for name in dir(obj)
}


@cache
def client_methods() -> dict[str, set[str]]:
    """snake_case client method -> the IAM actions it needs (all services that have it)."""
    session = botocore.session.get_session()
    methods: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            if service == "s3":
                actions = S3_ACTIONS.get(operation, [f"s3:{operation}"])
            else:
                actions = [f"{prefix}:{operation}"]
            methods.setdefault(xform_name(operation), set()).update(actions)
    for method, actions in TRANSFER_ACTIONS.items():
        methods.setdefault(method, set()).update(actions)
    return {method: actions for method, actions in methods.items() if method not in AMBIGUOUS}


def source_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not any(path.is_relative_to(excluded) for excluded in EXCLUDED):
            yield path


def aws_calls(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, client method) of each call in the tree that looks like a boto3 client call."""
    methods = client_methods()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method = node.func.attr
        if method in methods:
            yield node.lineno, method
        elif method == "get_paginator" and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and name.value in methods:
                yield node.lineno, name.value


def required_actions() -> dict[str, list[str]]:
    """IAM action -> where in the source it is needed."""
    needed: dict[str, list[str]] = {}
    for path in source_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, method in aws_calls(tree):
            for action in client_methods()[method]:
                needed.setdefault(action, []).append(f"{path.relative_to(ROOT)}:{line}")
    return needed


def statements() -> list[dict[str, Any]]:
    policy = json.loads(POLICY.read_text())
    return list(policy["Statement"])


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed(action: str) -> bool:
    """Some Allow statement names the action (IAM actions match case-insensitively)."""
    for statement in statements():
        if statement["Effect"] != "Allow":
            continue
        for pattern in as_list(statement["Action"]):
            if fnmatch.fnmatchcase(action.lower(), pattern.lower()):
                return True
    return False


def test_policy_allows_every_aws_call_in_the_source() -> None:
    needed = required_actions()
    missing = {action: where for action, where in needed.items() if not allowed(action)}
    assert not missing, "deploy/iam-policy.json lacks actions the code calls:\n" + "\n".join(
        f"  {action}  (used at {', '.join(where)})" for action, where in sorted(missing.items())
    )


def test_scanner_recognises_client_calls_and_ignores_other_methods() -> None:
    source = """
sm.create_endpoint(EndpointName="x")
s3.head_object(Bucket="b", Key="k")
s3.upload_file("f", "b", "k")
pages = sm.get_paginator("list_endpoint_configs")
autoscaling.register_scalable_target(ServiceNamespace="sagemaker")
runtime.invoke_endpoint(EndpointName="x", TargetModel="m")
cloudwatch.get_metric_data(MetricDataQueries=[])
settings.model_dump()
items.get("x")
pattern.search("text")
"""
    found = {method for _, method in aws_calls(ast.parse(source))}
    assert found == {
        "create_endpoint",
        "head_object",
        "upload_file",
        "list_endpoint_configs",
        "register_scalable_target",
        "invoke_endpoint",
        "get_metric_data",
    }
    methods = client_methods()
    assert methods["head_object"] == {"s3:GetObject"}
    assert methods["invoke_endpoint"] == {"sagemaker:InvokeEndpoint"}
    assert methods["get_metric_data"] == {"cloudwatch:GetMetricData"}
    assert "s3:AbortMultipartUpload" in methods["upload_file"]


def test_policy_allows_what_the_operator_is_documented_to_do() -> None:
    # The reconcile's whole lifecycle, whether or not its code exists yet.
    for action in [
        "sagemaker:CreateModel",
        "sagemaker:DescribeModel",
        "sagemaker:DeleteModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:DescribeEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:DeleteEndpoint",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
        "sagemaker:DeleteTags",
        "sagemaker:InvokeEndpoint",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "iam:PassRole",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DescribeScalingPolicies",
        "iam:CreateServiceLinkedRole",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:GetMetricData",
    ]:
        assert allowed(action), action


# IAM-only actions that are not API operation names.
IAM_ONLY = {"iam:PassRole"}
S3_IAM_ACTIONS = {
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
}
BOTOCORE_SERVICE = {
    "sagemaker": ["sagemaker", "sagemaker-runtime"],
    "application-autoscaling": ["application-autoscaling"],
    "cloudwatch": ["cloudwatch"],
    "kms": ["kms"],
    "iam": ["iam"],
}


def all_policy_actions() -> list[str]:
    return [action for s in statements() for action in as_list(s["Action"])]


@pytest.mark.parametrize("action", sorted(set(all_policy_actions())))
def test_every_action_is_real_and_named_exactly(action: str) -> None:
    prefix, _, name = action.partition(":")
    assert "*" not in action, "no wildcards: name each action"
    if action in IAM_ONLY:
        return
    if prefix == "s3":
        assert action in S3_IAM_ACTIONS
        return
    session = botocore.session.get_session()
    names = {
        op
        for svc in BOTOCORE_SERVICE[prefix]
        for op in session.get_service_model(svc).operation_names
    }
    assert name in names, f"{action} is not an operation of {prefix}"


def test_mutations_are_scoped_by_arn_and_ownership_tag() -> None:
    tag = "mme-operator.io/managed-by"
    for statement in statements():
        assert statement["Effect"] == "Allow"
        assert statement.get("Sid"), "every statement says what it is for"
        actions = as_list(statement["Action"])
        resources = as_list(statement["Resource"])
        mutating = [
            a
            for a in actions
            if a.startswith("sagemaker:") and not a.split(":")[1].startswith(("Describe", "List"))
        ]
        if mutating:
            assert all(r.startswith("arn:aws:sagemaker:") for r in resources), statement["Sid"]
            condition = json.dumps(statement.get("Condition", {}))
            assert f"aws:RequestTag/{tag}" in condition or f"aws:ResourceTag/{tag}" in condition, (
                statement["Sid"]
            )
        if resources == ["*"]:
            # GetMetricData has no resource-level permissions: "*" is the only resource.
            assert all(
                a.split(":")[1].startswith(("Describe", "List", "GetMetricData"))
                or a.startswith("application-autoscaling:")
                for a in actions
            ), f"{statement['Sid']}: only reads (and autoscaling, which has no ARNs) on *"
        if "iam:PassRole" in actions:
            assert statement["Condition"] == {
                "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
            }
            assert "*" not in statement["Resource"]
        if "iam:CreateServiceLinkedRole" in actions:
            assert statement["Condition"]["StringEquals"]["iam:AWSServiceName"] == (
                "sagemaker.application-autoscaling.amazonaws.com"
            )


def test_ownership_condition_uses_the_tag_the_operator_writes() -> None:
    resources = pytest.importorskip("mme_operator.sagemaker.resources")
    key = f"{resources.MANAGED_BY_TAG}"
    conditioned = [s for s in statements() if s["Sid"].startswith("SageMaker") and "Condition" in s]
    assert conditioned
    for statement in conditioned:
        # A tag's value is required by StringEquals; Null only says a tag is absent.
        tags = {
            name.split("/", 1)[1]: value
            for values in (statement["Condition"].get("StringEquals") or {},)
            for name, value in values.items()
            if name.startswith(("aws:RequestTag/", "aws:ResourceTag/"))
        }
        assert tags == {key: resources.MANAGED_BY}, statement["Sid"]
        absent = statement["Condition"].get("Null") or {}
        assert all(name.split("/", 1)[1].startswith(resources.TAG_PREFIX) for name in absent)


# -- what the policy lets the operator's identity do, evaluated as IAM does ----------------
#
# A small evaluator of the condition operators this policy uses (IAM's semantics: every
# operator of a statement must hold, a key is ANDed within an operator, values of one key are
# ORed; a missing key fails every operator but Null and ForAllValues). An operator it does
# not know fails the test, so the proofs below cannot silently stop applying.

MANAGED = "mme-operator.io/managed-by"
OWNER_UID = "mme-operator.io/owner-uid"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/team-b-prod"
MODEL_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model/team-b-prod-0123456789"
CONFIG_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/team-b-prod-0123456789"
OURS = {MANAGED: "mme-operator", OWNER_UID: "uid-a", "mme-operator.io/owner": "team-a/prod"}
B_TAGS = {MANAGED: "mme-operator", OWNER_UID: "uid-b", "mme-operator.io/owner": "team-b/prod"}


def request_context(
    *,
    resource_tags: dict[str, str] | None = None,
    request_tags: dict[str, str] | None = None,
    tag_keys: list[str] | None = None,
    tagging_action: str | None = None,
) -> dict[str, str | list[str]]:
    """The condition keys IAM sees for one request (lower-cased names)."""
    context: dict[str, str | list[str]] = {}
    for key, value in (resource_tags or {}).items():
        context[f"aws:resourcetag/{key}".lower()] = value
    for key, value in (request_tags or {}).items():
        context[f"aws:requesttag/{key}".lower()] = value
    keys = tag_keys if tag_keys is not None else list(request_tags or {})
    if keys:
        context["aws:tagkeys"] = keys
    if tagging_action is not None:
        context["sagemaker:taggingaction"] = tagging_action
    return context


def _values(context: dict[str, str | list[str]], key: str) -> list[str] | None:
    found = context.get(key.lower())
    if found is None:
        return None
    return [found] if isinstance(found, str) else list(found)


def _holds(operator: str, key: str, wanted: list[str], context: dict[str, str | list[str]]) -> bool:
    found = _values(context, key)
    if operator == "Null":
        return (found is None) == (wanted == ["true"])
    if operator in ("StringEquals", "StringLike"):
        if found is None or len(found) != 1:
            return False
        match = (lambda v, w: v == w) if operator == "StringEquals" else fnmatch.fnmatchcase
        return any(match(found[0], w) for w in wanted)
    if operator in ("ForAllValues:StringNotEquals", "ForAllValues:StringNotLike"):
        match = (lambda v, w: v == w) if operator.endswith("Equals") else fnmatch.fnmatchcase
        return all(not any(match(v, w) for w in wanted) for v in found or [])
    raise AssertionError(f"the evaluator does not know the operator {operator}")


def allowing(action: str, arn: str, context: dict[str, str | list[str]]) -> list[str]:
    """The Sids of the statements that allow ``action`` on ``arn`` in ``context``."""
    sids = []
    for statement in statements():
        if not any(
            fnmatch.fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])
        ):
            continue
        if not any(fnmatch.fnmatchcase(arn, r) for r in as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if all(
            _holds(operator, key, as_list(wanted), context)
            for operator, keys in conditions.items()
            for key, wanted in keys.items()
        ):
            sids.append(statement["Sid"])
    return sids


@pytest.mark.parametrize(
    ("create", "arn"),
    [
        ("CreateModel", MODEL_ARN),
        ("CreateEndpointConfig", CONFIG_ARN),
        ("CreateEndpoint", ENDPOINT_ARN),
    ],
)
def test_tags_are_written_at_create_time(create: str, arn: str) -> None:
    context = request_context(request_tags=OURS, tagging_action=create)
    assert allowing(f"sagemaker:{create}", arn, context) == ["SageMakerCreateOnlyTagged"]
    # SageMaker authorises create-time tags as AddTags with sagemaker:TaggingAction set.
    assert "SageMakerTagOnCreate" in allowing("sagemaker:AddTags", arn, context)


@pytest.mark.parametrize("arn", [ENDPOINT_ARN, MODEL_ARN, CONFIG_ARN])
def test_another_owners_resource_cannot_be_retagged_changed_or_untagged(arn: str) -> None:
    # The takeover: AddTags on B's resource with A's owner tag (which then satisfied the
    # update/delete condition). Only create-time tagging or an unmanaged endpoint may be tagged.
    retag = request_context(resource_tags=B_TAGS, request_tags=OURS)
    assert allowing("sagemaker:AddTags", arn, retag) == []
    # Nor can the ownership tags be removed to make it look unmanaged.
    for key in (OWNER_UID, MANAGED, "mme-operator.io/owner"):
        untag = request_context(resource_tags=B_TAGS, tag_keys=[key])
        assert allowing("sagemaker:DeleteTags", arn, untag) == [], key
    # A user's own tag on an owned resource may still go.
    untag_user = request_context(resource_tags=OURS, tag_keys=["team"])
    assert allowing("sagemaker:DeleteTags", arn, untag_user) == [
        "SageMakerUntagOwnedButKeepOwnership"
    ]


def test_a_forged_tagging_action_without_the_managed_tag_is_refused() -> None:
    context = request_context(request_tags={"team": "x"}, tagging_action="CreateEndpoint")
    assert allowing("sagemaker:AddTags", ENDPOINT_ARN, context) == []


def test_adoption_is_its_own_statement_and_only_for_an_unmanaged_endpoint() -> None:
    unmanaged = request_context(resource_tags={"team": "x"}, request_tags=OURS)
    assert allowing("sagemaker:AddTags", ENDPOINT_ARN, unmanaged) == [
        "SageMakerAdoptUnmanagedEndpoint"
    ]
    # Unmanaged models and configs are never tagged (adoption is of the endpoint only)...
    assert allowing("sagemaker:AddTags", MODEL_ARN, unmanaged) == []
    assert allowing("sagemaker:AddTags", CONFIG_ARN, unmanaged) == []
    # ...nor is an endpoint that carries only an owner uid (no managed-by tag).
    half = request_context(resource_tags={OWNER_UID: "uid-b"}, request_tags=OURS)
    assert allowing("sagemaker:AddTags", ENDPOINT_ARN, half) == []
    # Before adoption, an unmanaged endpoint cannot be updated or deleted.
    for action in ("sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint"):
        assert allowing(action, ENDPOINT_ARN, request_context(resource_tags={"team": "x"})) == []


def test_the_evaluator_refuses_operators_it_does_not_know() -> None:
    with pytest.raises(AssertionError, match="does not know"):
        _holds("NumericLessThan", "aws:x", ["1"], {})
