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
    """A valid SageMaker endpoint name (<= 63 of ``[a-zA-Z0-9-]``) unique per namespace/name.

    Kubernetes names may hold dots and be 253 characters long; long names are cut and
    given a short hash of the full name so that two long names stay distinct.
    """
    full = f"{namespace}-{name}"
    clean = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9-]", "-", full)).strip("-")
    if clean == full and len(clean) <= ENDPOINT_NAME_MAX:
        return clean
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{clean[: ENDPOINT_NAME_MAX - 9].rstrip('-')}-{digest}"
