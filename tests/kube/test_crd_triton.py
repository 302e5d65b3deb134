"""The typed Triton fields and the configPbtxt fragment as the real API server takes them:
accepted, explained by ``kubectl explain``, and the scheduler rule enforced."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
import yaml

from tests.cluster import ControlPlane
from tests.unit.api.documents import GOOD, changed
from tests.unit.triton.test_typed_config import SEQUENCE, TYPED

pytestmark = pytest.mark.envtest


def _document(models: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(changed(GOOD, "spec.models", models))
    doc["metadata"] = {"name": f"triton-{uuid.uuid4().hex[:6]}", "namespace": "default"}
    return doc


def test_every_typed_triton_field_is_accepted_and_kept(control_plane: ControlPlane) -> None:
    source_only = {"name": "add-sub", "source": "s3://bucket/add_sub/"}
    doc = _document([TYPED, SEQUENCE, source_only])
    control_plane.apply([doc])
    stored = yaml.safe_load(
        control_plane.kubectl(
            "get", "mep", doc["metadata"]["name"], "-n", "default", "-o", "yaml"
        ).stdout
    )
    models = stored["spec"]["models"]
    # Nothing pruned: a structural schema would silently drop a field it does not declare.
    assert (
        models[0]["instanceGroups"][0]["rateLimiter"] == TYPED["instanceGroups"][0]["rateLimiter"]
    )
    assert models[0]["configPbtxt"] == TYPED["configPbtxt"]
    assert models[0]["optimization"] == TYPED["optimization"]
    assert models[1]["sequenceBatching"] == SEQUENCE["sequenceBatching"]
    assert "platform" not in models[2] and "backend" not in models[2]


def test_one_scheduler_only_is_enforced_by_the_server(control_plane: ControlPlane) -> None:
    both = {**SEQUENCE, "dynamicBatching": {"maxQueueDelayMicroseconds": 100}}
    refused = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(_document([both])), check=False
    )
    assert refused.returncode != 0
    assert "set one scheduler: dynamicBatching or sequenceBatching" in refused.stderr


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("sequenceBatching", "Triton's sequence batcher"),
        ("sequenceBatching.controlInput.control", "CONTROL_SEQUENCE"),
        ("sequenceBatching.oldest", "The oldest strategy"),
        ("responseCache", "Triton's response cache"),
        ("modelWarmup", "Requests Triton itself sends while loading"),
        ("versionPolicy", "Which version directories Triton serves"),
        ("optimization.executionAccelerators", "Execution accelerators"),
        ("instanceGroups.rateLimiter", "Triton's rate limiter"),
        ("dynamicBatching.priorityQueuePolicy", "Queue policy per priority level"),
        ("inputs.reshape", "Triton's reshape"),
        ("inputs.allowRaggedBatch", "allow_ragged_batch"),
        ("defaultModelFilename", "File (or directory) Triton loads"),
        ("configPbtxt", "checked with Triton's schema"),
    ],
)
def test_kubectl_explain_explains_the_triton_fields(
    control_plane: ControlPlane, path: str, text: str
) -> None:
    out = control_plane.kubectl("explain", f"modelendpoint.spec.models.{path}").stdout
    assert text in " ".join(out.split())
