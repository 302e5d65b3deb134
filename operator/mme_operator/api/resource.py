"""The whole ModelEndpoint object (metadata, spec, status) and names derived from it."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mme_operator.api.spec import API_VERSION, KIND, ModelEndpointSpec
from mme_operator.api.status import ModelEndpointStatus

ENDPOINT_NAME_MAX = 63


class ObjectMeta(BaseModel):
    """The part of Kubernetes metadata the operator reads."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    creation_timestamp: str = Field(default="", alias="creationTimestamp")
    generation: int = Field(default=1)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ModelEndpoint(BaseModel):
    """A parsed ModelEndpoint custom resource."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta
    spec: ModelEndpointSpec
    status: ModelEndpointStatus | None = None

    @property
    def artifact_prefix(self) -> str:
        """S3 key prefix of this endpoint's archives (``spec.artifacts.prefix`` or ``<ns>/<name>/``)."""
        return self.spec.artifacts.prefix or f"{self.metadata.namespace}/{self.metadata.name}/"

    @property
    def endpoint_name(self) -> str:
        """SageMaker endpoint name: the spec's, else derived from namespace and name."""
        return self.spec.endpoint_name or derive_endpoint_name(
            self.metadata.namespace, self.metadata.name
        )

    def to_k8s(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.metadata.model_dump(exclude_defaults=True),
            "spec": self.spec.to_k8s(),
        }
        if self.status is not None:
            body["status"] = self.status.to_k8s()
        return body


def derive_endpoint_name(namespace: str, name: str) -> str:
    """The SageMaker endpoint name of a ModelEndpoint without ``spec.endpointName``.

    ``<namespace>-<name>`` in lower case, cleaned to ``[a-z0-9-]`` and cut to fit, then ``-``
    and 8 hex digits of the sha256 of ``<namespace>/<name>``. The hash makes the name
    injective: ``team-a/prod`` and ``team/a-prod`` share the readable part but not the hash
    (the readable part alone collided), and SageMaker, which matches endpoint names without
    regard to case, never sees two names that differ only by case.
    """
    readable = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"{namespace}-{name}".lower()))
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
    cut = readable.strip("-")[: ENDPOINT_NAME_MAX - 9].rstrip("-") or "mme"
    return f"{cut}-{digest}"


def legacy_endpoint_name(namespace: str, name: str) -> str:
    """The name :func:`derive_endpoint_name` gave before it carried a hash (collides).

    Kept only to recognise endpoints created under it: see :func:`with_recorded_endpoint_name`.
    """
    full = f"{namespace}-{name}"
    clean = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9-]", "-", full)).strip("-")
    if clean == full and len(clean) <= ENDPOINT_NAME_MAX:
        return clean
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{clean[: ENDPOINT_NAME_MAX - 9].rstrip('-')}-{digest}"


def with_recorded_endpoint_name(resource: ModelEndpoint, recorded: str | None) -> ModelEndpoint:
    """``resource`` still named as its status recorded, where that was the legacy derived name.

    The migration rule: a ModelEndpoint without ``spec.endpointName`` whose
    ``status.endpointName`` is the name the old derivation gave it (an endpoint created
    before the upgrade) keeps that name, so its endpoint is neither orphaned nor created
    twice; every other one gets the new, injective name. Only the legacy name of this very
    namespace/name is honoured, so a status cannot point a resource at another's endpoint
    (ownership tags guard that anyway).
    """
    meta = resource.metadata
    if resource.spec.endpoint_name or not recorded:
        return resource
    if recorded != legacy_endpoint_name(meta.namespace, meta.name):
        return resource
    spec = resource.spec.model_copy(update={"endpoint_name": recorded})
    return resource.model_copy(update={"spec": spec})
