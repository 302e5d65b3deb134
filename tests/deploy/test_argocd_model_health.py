"""argocd/model-health.lua, run by a real Lua interpreter (as Argo CD runs it) on Models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mme_operator.api.model import validate_model

from tests.deploy.test_argocd_health import health_of as argocd_health

ARGOCD = Path(__file__).resolve().parents[2] / "argocd"
SCRIPT = (ARGOCD / "model-health.lua").read_text()


def health_of(obj: dict[str, Any]) -> dict[str, Any]:
    return argocd_health(obj, SCRIPT)


def model(
    *conditions: tuple[str, str, str], generation: int = 2, observed: int | None = 2
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "bert", "namespace": "team-a", "generation": generation},
        "spec": {
            "endpointRef": {"name": "shared", "namespace": "ml-platform"},
            "source": "s3://b/k",
        },
    }
    if observed is not None:
        doc["status"] = {
            "observedGeneration": observed,
            "endpointName": "ml-platform-shared-1a2b3c4d",
            "targetModel": "team-a/bert-0123456789ab.tar.gz",
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": "why"} for t, s, r in conditions
            ],
        }
    assert validate_model(doc)[0] is not None
    return doc


ATTACHED = ("Accepted", "True", "Attached")


@pytest.mark.parametrize(
    ("doc", "status", "message"),
    [
        (
            model(ATTACHED, ("Ready", "True", "ModelAvailable")),
            "Healthy",
            "Served by ml-platform-shared-1a2b3c4d as TargetModel team-a/bert-0123456789ab.tar.gz",
        ),
        (
            model(observed=None),
            "Progressing",
            "Waiting for the endpoint's operator to report status",
        ),
        (
            model(ATTACHED, ("Ready", "True", "ModelAvailable"), observed=1),
            "Progressing",
            "Waiting for the operator to reconcile generation 2",
        ),
        (model(ATTACHED, ("Ready", "False", "ModelPending")), "Progressing", "ModelPending: why"),
        (
            model(ATTACHED, ("Ready", "False", "EndpointNotReady")),
            "Progressing",
            "EndpointNotReady: why",
        ),
        (model(ATTACHED, ("Ready", "False", "SourceError")), "Degraded", "SourceError: why"),
        (model(ATTACHED, ("Ready", "False", "LoadFailed")), "Degraded", "LoadFailed: why"),
        *(
            (model(("Accepted", "False", r), ("Ready", "False", r)), "Degraded", f"{r}: why")
            for r in ("NotAllowedByEndpoint", "NameConflict", "EndpointNotFound", "EndpointGone")
        ),
    ],
)
def test_model_health(doc: dict[str, Any], status: str, message: str) -> None:
    assert health_of(doc) == {"status": status, "message": message}


def test_configmap_snippet_carries_the_model_script_verbatim() -> None:
    snippet = yaml.safe_load((ARGOCD / "argocd-cm-snippet.yaml").read_text())
    assert snippet["data"]["resource.customizations.health.mme-operator.io_Model"] == SCRIPT
