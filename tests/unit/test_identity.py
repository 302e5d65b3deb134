"""The endpoint's identity (region, endpoint name, archive location) as the operator guards it."""

from __future__ import annotations

from typing import Any

import pytest
from mme_operator.api import (
    ModelEndpoint,
    ModelEndpointStatus,
    derive_endpoint_name,
    validate_resource,
    with_recorded_endpoint_name,
)
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
    # As the engine reads it: an endpoint recorded under the legacy derived name keeps it.
    return with_recorded_endpoint_name(found, RECORDED.endpoint_name)


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


def test_derived_names_never_collide_across_namespaces_or_by_case() -> None:
    # Once both "team-a-prod"; SageMaker matches endpoint names without regard to case.
    names = {
        derive_endpoint_name("team-a", "prod"),
        derive_endpoint_name("team", "a-prod"),
        derive_endpoint_name("team.a", "prod"),
        derive_endpoint_name("team-a", "Prod"),
    }
    assert len({n.lower() for n in names}) == 4
    long = derive_endpoint_name("n" * 63, "x" * 253)
    assert len(long) <= 63 and long == long.lower()


def test_an_endpoint_recorded_under_the_legacy_name_keeps_it_and_others_move_on() -> None:
    found, _ = validate_resource(changed(MINIMAL, "metadata.namespace", "default"))
    assert found is not None
    assert found.endpoint_name == derive_endpoint_name("default", "tiny") != "default-tiny"
    # Created before the upgrade: status says default-tiny, the old derivation's name.
    assert with_recorded_endpoint_name(found, "default-tiny").endpoint_name == "default-tiny"
    # Anything else recorded (another's name, a forged status) is not honoured.
    assert with_recorded_endpoint_name(found, "team-b-prod").endpoint_name == found.endpoint_name
    assert with_recorded_endpoint_name(found, None).endpoint_name == found.endpoint_name
    named = with_recorded_endpoint_name(
        validate_resource(changed(MINIMAL, "spec.endpointName", "pinned"))[0], "default-tiny"
    )
    assert named.endpoint_name == "pinned"
