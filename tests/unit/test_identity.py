"""The endpoint's identity (region, endpoint name, archive location) as the operator guards it."""

from __future__ import annotations

from typing import Any

import pytest
from mme_operator.api import ModelEndpoint, ModelEndpointStatus, validate_resource
from mme_operator.reconcile.engine import identity_changes

from tests.unit.api.documents import MINIMAL, changed

RECORDED = ModelEndpointStatus(
    region="eu-west-1",
    endpoint_name="default-tiny",
    artifacts_location="s3://models-eu/default/tiny/",
)


def resource(doc: dict[str, Any]) -> ModelEndpoint:
    doc = changed(doc, "metadata.namespace", "default")
    found, problems = validate_resource(doc)
    assert found is not None, problems
    return found


def test_an_unchanged_identity_or_a_first_pass_is_no_change() -> None:
    assert identity_changes(resource(MINIMAL), RECORDED) == []
    assert identity_changes(resource(MINIMAL), None) == []
    assert identity_changes(resource(MINIMAL), ModelEndpointStatus()) == []


@pytest.mark.parametrize(
    ("path", "value", "change"),
    [
        ("spec.region", "us-east-1", "spec.region eu-west-1 -> us-east-1"),
        ("spec.endpointName", "other", "endpoint name default-tiny -> other"),
        (
            "spec.artifacts.prefix",
            "moved/",
            "archive location s3://models-eu/default/tiny/ -> s3://models-eu/moved/",
        ),
        (
            "spec.artifacts.bucket",
            "models-us",
            "archive location s3://models-eu/default/tiny/ -> s3://models-us/default/tiny/",
        ),
    ],
)
def test_each_moved_part_of_the_identity_is_named(path: str, value: str, change: str) -> None:
    assert identity_changes(resource(changed(MINIMAL, path, value)), RECORDED) == [change]


def test_an_endpoint_name_equal_to_the_derived_one_is_no_change() -> None:
    named = resource(changed(MINIMAL, "spec.endpointName", "default-tiny"))
    assert identity_changes(named, RECORDED) == []
