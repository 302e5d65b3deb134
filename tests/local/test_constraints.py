"""The local SageMaker refuses the names and tag sets AWS refuses, in AWS's words.

Each refused tag set is also refused by admission (`validate` and the operator), so a
spec that passes admission never meets this refusal after resources exist.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from mme_operator.api import validate_resource

from tests.local.conftest import Stack, unique
from tests.unit.api.documents import GOOD, changed

OPERATOR_TAGS = [
    {"Key": "mme-operator.io/owner-uid", "Value": "uid-1"},
    {"Key": "mme-operator.io/owner", "Value": "ml/small-llms"},
    {"Key": "mme-operator.io/managed-by", "Value": "mme-operator"},
]


def create_model(stack: Stack, name: str | None = None, tags: Any = None) -> str:
    return stack.model(name=name, tags=tags)


def refusal(call: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    error: dict[str, str] = info.value.response["Error"]
    return error


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "m" * 64,
            "1 validation error detected: Value '" + "m" * 64 + "' at 'modelName' failed to "
            "satisfy constraint: Member must have length less than or equal to 63",
        ),
        (
            "bad_name",
            "1 validation error detected: Value 'bad_name' at 'modelName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$",
        ),
    ],
)
def test_invalid_model_names_are_refused(stack: Stack, name: str, message: str) -> None:
    error = refusal(lambda: create_model(stack, name))
    assert error == {"Code": "ValidationException", "Message": message}


def test_invalid_endpoint_names_are_refused_before_anything_exists(stack: Stack) -> None:
    config = stack.config(stack.model())
    name = "-ep-" + "x" * 70
    error = refusal(lambda: stack.sm.create_endpoint(EndpointName=name, EndpointConfigName=config))
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("2 validation errors detected: ")
    assert (
        "at 'endpointName' failed to satisfy constraint: Member must have length"
        in error["Message"]
    )
    assert (
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
        in (error["Message"])
    )
    assert stack.sm.list_endpoints(NameContains="-ep-")["Endpoints"] == []


def test_a_63_character_name_is_accepted(stack: Stack) -> None:
    name = create_model(stack, "m-" + "x" * 61)
    assert stack.sm.describe_model(ModelName=name)["ModelName"] == name


def user_tags(count: int) -> dict[str, str]:
    return {f"team-{i}": "ml" for i in range(count)}


# (spec.tags, AWS's message): refused by AWS, by the local SageMaker, and by admission.
REFUSED_TAGS = [
    pytest.param(
        user_tags(48),
        "1 validation error detected: Value '[...]' at 'tags' failed to satisfy constraint: "
        "Member must have length less than or equal to 50",
        id="48-user-tags-plus-3-of-ours",
    ),
    pytest.param(
        {"k" * 129: "v"},
        "at 'tags.4.member.key' failed to satisfy constraint: Member must have length less "
        "than or equal to 128",
        id="long-key",
    ),
    pytest.param(
        {"team": "v" * 257},
        "at 'tags.4.member.value' failed to satisfy constraint: Member must have length less "
        "than or equal to 256",
        id="long-value",
    ),
    pytest.param(
        {"team#1": "v"},
        "Value 'team#1' at 'tags.4.member.key' failed to satisfy constraint: Member must "
        r"satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$",
        id="key-character",
    ),
    pytest.param(
        {"team": "a;b"},
        "Value 'a;b' at 'tags.4.member.value' failed to satisfy constraint",
        id="value-character",
    ),
    pytest.param(
        {"AWS:team": "ml"},
        "Tag key 'AWS:team' is not valid: tag keys starting with 'aws:' are reserved",
        id="aws-prefix",
    ),
]


@pytest.mark.parametrize(("tags", "message"), REFUSED_TAGS)
def test_tag_sets_aws_refuses_are_refused_here_and_at_admission(
    stack: Stack, tags: dict[str, str], message: str
) -> None:
    request_tags = OPERATOR_TAGS + [{"Key": k, "Value": v} for k, v in tags.items()]
    name = unique("model")
    error = refusal(lambda: create_model(stack, name, request_tags))
    assert error["Code"] == "ValidationException"
    assert message in error["Message"]
    assert stack.sm.list_models(NameContains=name)["Models"] == []  # nothing was created
    _, problems = validate_resource(changed(GOOD, "spec.tags", tags))
    assert [p.path for p in problems][:1] in (["spec.tags"], [f"spec.tags.{next(iter(tags))}"])


def test_add_tags_refuses_the_same(stack: Stack) -> None:
    arn = stack.sm.describe_model(ModelName=create_model(stack))["ModelArn"]
    error = refusal(
        lambda: stack.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "aws:x", "Value": "1"}])
    )
    assert error["Code"] == "ValidationException"
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert (
        "at 'tags' failed"
        in refusal(lambda: stack.sm.add_tags(ResourceArn=arn, Tags=too_many))["Message"]
    )
    assert stack.sm.list_tags(ResourceArn=arn)["Tags"] == []


def test_tags_admission_accepts_are_accepted(stack: Stack) -> None:
    tags = {**user_tags(45), "équipe": "日本 +=.:/@_-", "cost center": ""}
    assert validate_resource(changed(GOOD, "spec.tags", tags))[0] is not None
    request_tags = OPERATOR_TAGS + [{"Key": k, "Value": v} for k, v in tags.items()]
    assert len(request_tags) == 50
    name = create_model(stack, tags=request_tags)
    arn = stack.sm.describe_model(ModelName=name)["ModelArn"]
    assert len(stack.sm.list_tags(ResourceArn=arn)["Tags"]) == 50
