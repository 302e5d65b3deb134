"""An endpoint under ``spec.attach.beyondCapacity: Refuse``: which newcomers it refuses (pure)."""

from __future__ import annotations

from typing import Any

from mme_operator.api import parse_resource
from mme_operator.api.model import AttachedModelStatus, ModelResource
from mme_operator.api.status import Reason
from mme_operator.reconcile.attach import beyond_capacity
from mme_operator.sizing import get_catalogue
from mme_operator.sizing.choice import capacity_mib

from tests.unit.models.test_attach import model

ENDPOINT = "ml-platform/shared"


def accepted(found: ModelResource) -> ModelResource:
    """``found`` as the last pass of the endpoint left it: Accepted=True."""
    status = {
        "endpoint": ENDPOINT,
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Attached"}],
    }
    return found.model_copy(update={"status": AttachedModelStatus.model_validate(status)})


def refused(models: list[ModelResource], needs: dict[str, int], inline: int = 0) -> list[str]:
    found = beyond_capacity(
        ENDPOINT, "ml.g4dn.xlarge", 14745, inline, models, lambda m: needs[m.metadata.name]
    )
    assert all(r.reason == Reason.DOES_NOT_FIT for r in found.values())
    return sorted(m.metadata.name for m in models if m.metadata.uid in found)


def test_newcomers_are_taken_oldest_first_while_they_fit() -> None:
    old = model("team-a", "old", "2026-12-01T00:00:00Z")
    big = model("team-b", "big", "2026-12-01T00:00:01Z")
    small = model("team-b", "small", "2026-12-01T00:00:02Z")
    needs = {"old": 8000, "big": 8000, "small": 500}

    # big does not fit after old; small, younger, still does.
    assert refused([old, big, small], needs) == ["big"]
    # The inline models come first: with 7000 MiB of them, old no longer fits either.
    assert refused([old, big, small], needs, inline=7000) == ["big", "old"]


def test_a_model_already_accepted_keeps_its_place() -> None:
    old = model("team-a", "old", "2026-12-01T00:00:00Z")
    grown = accepted(model("team-b", "grown", "2026-12-01T00:00:01Z"))
    needs = {"old": 8000, "grown": 8000}

    # grown was accepted before (old came back, or grew): it serves, so it stays; old waits.
    assert refused([old, grown], needs) == ["old"]


def test_the_refusal_says_what_is_left_and_what_to_do() -> None:
    big = model("team-b", "big")
    [refusal] = beyond_capacity(
        ENDPOINT, "ml.g4dn.xlarge", 14745, 10000, [big], lambda _: 8000
    ).values()
    assert refusal.message.startswith(
        "needs 8000 MiB of GPU memory; ModelEndpoint ml-platform/shared has 4745 of 14745 MiB "
        "left on ml.g4dn.xlarge"
    )
    assert "larger instance type" in refusal.message


def endpoint(**spec: Any) -> Any:
    body = {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models"},
        "models": [],
        **spec,
    }
    doc = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "shared", "namespace": "ml-platform"},
        "spec": body,
    }
    return parse_resource(doc).spec


def test_capacity_is_the_instance_type_or_the_largest_allowed_one() -> None:
    catalogue = get_catalogue()
    assert capacity_mib(endpoint(instanceType="ml.g4dn.xlarge"), catalogue) == (
        "ml.g4dn.xlarge",
        14745,
    )
    chosen = endpoint(sizing={"allowedFamilies": ["ml.g4dn"], "headroomPercent": 20})
    name, mib = capacity_mib(chosen, catalogue) or ("", 0)
    assert name.startswith("ml.g4dn.") and mib == int(16384 * 0.8)
