"""Desired state: what S3 and SageMaker should hold for one ModelEndpoint (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mme_operator.api import ModelEndpoint
from mme_operator.artifacts.naming import DesiredArchive, desired_archive
from mme_operator.sagemaker.autoscaling import DesiredScaling, desired_scaling
from mme_operator.sagemaker.resources import DesiredSageMaker, desired_sagemaker
from mme_operator.sizing.choice import Sizing
from mme_operator.triton import default_model_filename, render_model_config

ADOPT_ANNOTATION = "mme-operator.io/adopt-endpoint"
RETRY_UPDATE_ANNOTATION = "mme-operator.io/retry-update"
"""Set to a new value to retry a failed endpoint update once without changing the spec."""


@dataclass(frozen=True)
class DesiredState:
    """Everything one ModelEndpoint asks for, with deterministic names."""

    resource: ModelEndpoint
    bucket: str
    prefix: str
    archives: tuple[DesiredArchive, ...]
    sagemaker: DesiredSageMaker
    scaling: DesiredScaling | None
    warmup_models: frozenset[str]
    load_check: bool = True
    """Every new TargetModel is invoked once (else only the ``warmup_models``)."""
    grace_period_seconds: int = 0
    """How long a superseded archive is kept for clients still sending its TargetModel."""
    sizing: Sizing | None = None
    """GPU-memory fit, instance choice and cost (None where no sizing was worked out)."""
    adoption_allowed: bool = False
    """Whether the operator lets an endpoint no ModelEndpoint owns be adopted at all."""
    archive_namespaces: frozenset[str] = frozenset()
    """Namespaces whose attached Models' archives lie in folders of the prefix (listed too)."""
    attached: frozenset[str] = frozenset()
    """Names (``<namespace>/<name>``) of the models that are attached Models, not inline."""

    @property
    def endpoint_name(self) -> str:
        return self.sagemaker.endpoint.name

    @property
    def owner_uid(self) -> str:
        return self.resource.metadata.uid

    @property
    def adopt(self) -> bool:
        """Whether the user asked to adopt an existing endpoint of this name."""
        return self.resource.metadata.annotations.get(ADOPT_ANNOTATION) == self.endpoint_name

    @property
    def retry_update_token(self) -> str | None:
        """The retry-update annotation's value; None (or empty) when unset."""
        return self.resource.metadata.annotations.get(RETRY_UPDATE_ANNOTATION) or None


def render_configs(resource: ModelEndpoint) -> dict[str, str]:
    """``config.pbtxt`` of every model, by model name (raises TritonConfigError)."""
    return {model.name: render_model_config(model) for model in resource.spec.models}


def build_desired(
    resource: ModelEndpoint,
    fingerprints: Mapping[str, str],
    configs: Mapping[str, str] | None = None,
    *,
    default_grace_period_seconds: int = 0,
    sizing: Sizing | None = None,
    load_check: bool = True,
    adoption_allowed: bool = False,
    archive_namespaces: frozenset[str] = frozenset(),
    attached: frozenset[str] = frozenset(),
) -> DesiredState:
    """The desired state of ``resource`` given each model source's fingerprint.

    ``fingerprints`` maps model name -> cheap identity of its source content (ETag, size,
    ...), so archive names are computed without downloading any weights. A model without
    a fingerprint (its source could not be read) gets no archive this time.
    ``default_grace_period_seconds`` applies when ``spec.artifacts.gracePeriodSeconds`` is unset.
    ``load_check`` (the ``MME_LOAD_CHECK`` setting) has every new TargetModel invoked once.
    """
    configs = configs if configs is not None else render_configs(resource)
    prefix = resource.artifact_prefix
    archives = tuple(
        desired_archive(
            prefix=prefix,
            model_name=model.name,
            config_pbtxt=configs[model.name],
            source_uri=model.source,
            fingerprint=fingerprints[model.name],
            weights_filename=default_model_filename(model),
        )
        for model in resource.spec.models
        if model.name in fingerprints
    )
    return DesiredState(
        resource=resource,
        bucket=resource.spec.artifacts.bucket,
        prefix=prefix,
        archives=archives,
        sagemaker=desired_sagemaker(resource),
        scaling=desired_scaling(resource.spec.autoscaling),
        warmup_models=frozenset(m.name for m in resource.spec.models if m.warmup),
        load_check=load_check,
        sizing=sizing,
        adoption_allowed=adoption_allowed,
        archive_namespaces=archive_namespaces,
        attached=attached,
        grace_period_seconds=(
            resource.spec.artifacts.grace_period_seconds
            if resource.spec.artifacts.grace_period_seconds is not None
            else default_grace_period_seconds
        ),
    )
