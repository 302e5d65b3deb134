"""The Model kind: one model, in its team's namespace, attached to a shared ModelEndpoint.

A ModelEndpoint is the server; a Model is one model on it, so thousands of models from
many namespaces share one fleet and each team has RBAC on its own Models only. Its spec is
an endpoint reference plus every field of a ModelEndpoint's inline model; its status is
that model's (TargetModel, state, load result) with the conditions Accepted and Ready.
Field descriptions end up in the CRD (``kubectl explain model.spec``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from mme_operator.api.resource import ObjectMeta
from mme_operator.api.spec import GROUP, MODEL_NAME_PATTERN, VERSION, ApiModel, ModelSpec
from mme_operator.api.status import Condition, ModelStatus
from mme_operator.api.validation import (
    Problem,
    _pydantic_problems,
    model_problems,
    parsed_status,
)

MODEL_KIND = "Model"
MODEL_PLURAL = "models"
MODEL_SINGULAR = "model"
MODEL_API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

# The model's name within its endpoint defaults to metadata.name, which may hold '.': the
# model-name pattern refuses it, so such a Model must name itself (spec.name).
MODEL_OBJECT_RULES: list[JsonValue] = [
    {
        "rule": "has(self.spec.name) || self.metadata.name.matches('"
        + MODEL_NAME_PATTERN.replace("\\", "\\\\")
        + "')",
        "message": "metadata.name is not a valid model name (letters, digits, '_' and '-', "
        "starting with a letter or digit): set spec.name",
    },
    {
        "rule": "has(self.spec.name) || size(self.metadata.name) <= 128",
        "message": "metadata.name is longer than a model name may be (128): set spec.name",
    },
]


class EndpointRef(ApiModel):
    """The ModelEndpoint this Model attaches to."""

    name: str = Field(
        pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="The ModelEndpoint's name."
    )
    namespace: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
        description="The ModelEndpoint's namespace; default the Model's own. The endpoint's "
        "spec.attach says whether Models of this namespace may attach.",
    )


class AttachedModelSpec(ModelSpec):
    """One model served by a shared ModelEndpoint: every field of an inline model, plus
    the endpoint it attaches to."""

    endpoint_ref: EndpointRef = Field(description="The ModelEndpoint that serves this model.")
    name: str | None = Field(  # type: ignore[assignment]
        default=None,
        pattern=MODEL_NAME_PATTERN,
        max_length=128,
        description="The model's name within its namespace on the endpoint; default "
        "metadata.name (required when metadata.name holds '.'). Served as "
        "<namespace>/<name>: the TargetModel starts with it.",
    )


class AttachedModelStatus(ModelStatus):
    """Observed state of a Model: its endpoint's verdict and the model's own status."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    name: str | None = Field(  # type: ignore[assignment]
        default=None, description="Served name on the endpoint: <namespace>/<name>."
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation this status reflects."
    )
    endpoint: str | None = Field(
        default=None, description="The ModelEndpoint (<namespace>/<name>) that serves it."
    )
    endpoint_name: str | None = Field(
        default=None, description="SageMaker endpoint name to send InvokeEndpoint to."
    )
    region: str | None = Field(default=None, description="AWS region of the endpoint.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Accepted (the endpoint admits it: Attached, NotAllowedByEndpoint, "
        "NameConflict, EndpointNotFound, EndpointGone) and Ready (ModelAvailable, "
        "ModelPending, EndpointNotReady, LoadFailed, SourceError, InvalidSpec).",
    )


class ModelResource(BaseModel):
    """A parsed Model custom resource."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    metadata: ObjectMeta
    spec: AttachedModelSpec
    status: AttachedModelStatus | None = None

    @property
    def model_name(self) -> str:
        """The model's name within its namespace on the endpoint."""
        return self.spec.name or self.metadata.name

    @property
    def served_name(self) -> str:
        """``<namespace>/<name>``: unique on the endpoint, the start of its TargetModel."""
        return f"{self.metadata.namespace}/{self.model_name}"

    @property
    def endpoint_key(self) -> tuple[str, str]:
        """(namespace, name) of the ModelEndpoint it attaches to."""
        ref = self.spec.endpoint_ref
        return ref.namespace or self.metadata.namespace, ref.name

    def as_model_spec(self) -> ModelSpec:
        """The inline-model form the endpoint renders and packages, named ``<namespace>/<name>``.

        Not validated again (the served name holds '/', which an inline name may not): every
        field was validated as the Model's.
        """
        values = {name: getattr(self.spec, name) for name in ModelSpec.model_fields}
        return ModelSpec.model_construct(
            _fields_set=self.spec.model_fields_set | {"name"},
            **{**values, "name": self.served_name},
        )


def model_status(raw: Any) -> AttachedModelStatus | None:
    """A Model's status as last written, or None when absent or malformed."""
    return parsed_status(AttachedModelStatus, raw)


def validate_model(doc: Any) -> tuple[ModelResource | None, list[Problem]]:
    """Parse a Model document; never raises: every problem comes back as a :class:`Problem`."""
    if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
        return None, [Problem("(document)", "expected a mapping with metadata and spec")]
    try:
        spec = AttachedModelSpec.model_validate(doc.get("spec"))
    except ValidationError as exc:
        return None, _pydantic_problems(exc, "spec")
    metadata = doc["metadata"]
    meta = ObjectMeta.model_validate({k: v for k, v in metadata.items() if v is not None})
    problems = model_problems(spec, "spec")
    if spec.name is None and not _is_model_name(meta.name):
        problems.append(
            Problem("spec.name", f"metadata.name {meta.name!r} is not a model name: set spec.name")
        )
    if problems:
        return None, problems
    return ModelResource(metadata=meta, spec=spec, status=model_status(doc.get("status"))), []


def _is_model_name(name: str) -> bool:
    return len(name) <= 128 and re.match(MODEL_NAME_PATTERN, name) is not None
