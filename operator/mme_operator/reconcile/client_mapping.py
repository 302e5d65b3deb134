"""The ConfigMap clients read their TargetModels from (pure: content only, no I/O).

``<name>-models`` in the ModelEndpoint's namespace, owned by it (deleted with it by the
garbage collector), holds one key per served model (model name -> the TargetModel to send
now), the endpoint's name and region, and all of it again as one JSON document. Model names
cannot contain dots, so the dotted keys never collide with a model's.
"""

from __future__ import annotations

import json
from typing import Any

from mme_operator.api import API_VERSION, KIND, ModelEndpointStatus, ModelState

ENDPOINT_KEY = "endpoint.name"
REGION_KEY = "endpoint.region"
JSON_KEY = "models.json"
SUFFIX = "-models"


def configmap_name(resource_name: str) -> str:
    """``<name>-models``."""
    return f"{resource_name}{SUFFIX}"


def models_configmap(
    *, name: str, namespace: str, uid: str, region: str, status: ModelEndpointStatus
) -> dict[str, Any] | None:
    """The ConfigMap for a ModelEndpoint's status; None until it has an endpoint name.

    Only models whose archive is in S3 are listed: a TargetModel is worth sending only once
    SageMaker can load it. A model whose new version has not loaded (Loading, LoadFailed)
    is mapped to the previous one that still serves it (``servingTargetModel``), and moves
    to the new one once it has loaded.
    """
    if not status.endpoint_name:
        return None
    targets = {
        m.name: m.serving_target_model or m.target_model
        for m in status.models or []
        if m.serving_target_model or (m.target_model and m.state == ModelState.AVAILABLE)
    }
    data = dict(sorted(targets.items()))
    data[ENDPOINT_KEY] = status.endpoint_name
    data[REGION_KEY] = region
    data[JSON_KEY] = json.dumps(
        {"endpointName": status.endpoint_name, "region": region, "targetModels": targets},
        sort_keys=True,
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(name),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mme-operator"},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": name,
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "data": data,
    }
