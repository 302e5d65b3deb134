"""The SageMaker resources a ModelEndpoint asks for, as pure data.

One Model (the Triton container in ``MultiModel`` mode, pointed at the endpoint's S3 prefix),
one EndpointConfig (one ``AllTraffic`` variant), one Endpoint. The Model and EndpointConfig
names carry a hash of what goes into them, so that only endpoint-level changes (image,
environment, role, S3 location, instance type or count) produce new ones; adding, changing or
removing a model only touches objects under the S3 prefix and leaves every name alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mme_operator.api import ModelEndpoint
from mme_operator.api.spec import LOG_VERBOSE_ENV, MODEL_LOAD_GPU_LIMIT_ENV, ServingSpec
from mme_operator.sagemaker.images import default_image
from mme_operator.sagemaker.names import endpoint_config_name, model_name

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import (
        CreateEndpointConfigInputTypeDef,
        CreateEndpointInputTypeDef,
        CreateModelInputTypeDef,
        ProductionVariantTypeDef,
        TagTypeDef,
    )

VARIANT_NAME = "AllTraffic"
TAG_PREFIX = "mme-operator.io/"
OWNER_UID_TAG = "mme-operator.io/owner-uid"
OWNER_TAG = "mme-operator.io/owner"
MANAGED_BY_TAG = "mme-operator.io/managed-by"
MANAGED_BY = "mme-operator"
TAG_VALUE_MAX = 256

# The only container environment added by default is SAGEMAKER_TRITON_LOG_VERBOSE=0 (see
# container_environment): ``Mode: MultiModel`` is what makes SageMaker start the Triton image
# in MME mode (the platform sets SAGEMAKER_MULTI_MODEL=true, which the image's ``serve``
# script reads), and SAGEMAKER_TRITON_DEFAULT_MODEL_NAME is for single-model endpoints only
# (``serve`` ignores it in MME mode). Users tune Triton via spec.serving and spec.environment.


@dataclass(frozen=True)
class DesiredModel:
    """The SageMaker Model: its name and the exact CreateModel request."""

    name: str
    image: str
    request: CreateModelInputTypeDef


@dataclass(frozen=True)
class DesiredEndpointConfig:
    """The SageMaker EndpointConfig: its name and the exact CreateEndpointConfig request."""

    name: str
    model_name: str
    instance_type: str
    instance_count: int
    request: CreateEndpointConfigInputTypeDef


@dataclass(frozen=True)
class DesiredEndpoint:
    """The SageMaker Endpoint: its name, the config it should run, and its tags."""

    name: str
    config_name: str
    tags: list[TagTypeDef]

    @property
    def request(self) -> CreateEndpointInputTypeDef:
        """The CreateEndpoint request."""
        return {
            "EndpointName": self.name,
            "EndpointConfigName": self.config_name,
            "Tags": self.tags,
        }


@dataclass(frozen=True)
class DesiredSageMaker:
    """Everything SageMaker should hold for one ModelEndpoint."""

    owner_uid: str
    model: DesiredModel
    endpoint_config: DesiredEndpointConfig
    endpoint: DesiredEndpoint


def ownership_tags(resource: ModelEndpoint) -> list[TagTypeDef]:
    """Tags marking a resource as this ModelEndpoint's, followed by ``spec.tags``.

    User tags under the ``mme-operator.io/`` prefix are dropped: they could otherwise
    override (or forge) the ownership the operator relies on before deleting anything.
    """
    owner = f"{resource.metadata.namespace}/{resource.metadata.name}"
    tags: list[TagTypeDef] = [
        {"Key": OWNER_UID_TAG, "Value": resource.metadata.uid},
        {"Key": OWNER_TAG, "Value": owner[:TAG_VALUE_MAX]},
        {"Key": MANAGED_BY_TAG, "Value": MANAGED_BY},
    ]
    for key, value in sorted((resource.spec.tags or {}).items()):
        if not key.lower().startswith(TAG_PREFIX):
            tags.append({"Key": key, "Value": value})
    return tags


def is_claimed(tags: Mapping[str, str]) -> bool:
    """Whether a resource's tags say some ModelEndpoint holds it (any ``mme-operator.io/`` key).

    Only a resource without any such tag may be adopted: one whose owner tag names another
    ModelEndpoint, or that merely says it is managed, is someone's.
    """
    return any(key.lower().startswith(TAG_PREFIX) for key in tags)


def model_data_url(resource: ModelEndpoint) -> str:
    """The S3 prefix the endpoint loads models from (``TargetModel`` is relative to it)."""
    return f"s3://{resource.spec.artifacts.bucket}/{resource.artifact_prefix}"


def serving_image(resource: ModelEndpoint) -> str:
    """``spec.image``, else the SageMaker Triton image (may raise ImageLookupError)."""
    spec = resource.spec
    return spec.image or default_image(spec.region, spec.triton_version)


def container_environment(resource: ModelEndpoint) -> dict[str, str]:
    """``spec.environment`` plus what ``spec.serving`` sets (validation refuses both at once).

    Triton's verbose log is off unless asked for: the image's ``serve`` turns it on when
    SAGEMAKER_TRITON_LOG_VERBOSE is unset, and every verbose line is paid for in CloudWatch.
    """
    spec = resource.spec
    serving = spec.serving or ServingSpec()
    environment = dict(spec.environment or {})
    if serving.model_load_gpu_limit is not None:
        environment[MODEL_LOAD_GPU_LIMIT_ENV] = f"{serving.model_load_gpu_limit:g}"
    if serving.log_verbosity is not None or LOG_VERBOSE_ENV not in environment:
        environment[LOG_VERBOSE_ENV] = str(serving.log_verbosity or 0)
    return dict(sorted(environment.items()))


def desired_model(resource: ModelEndpoint, tags: list[TagTypeDef]) -> DesiredModel:
    """The Model: Triton image in MultiModel mode over the endpoint's S3 prefix."""
    spec = resource.spec
    image = serving_image(resource)
    environment = container_environment(resource)
    cache = spec.serving.model_cache if spec.serving else None
    identity: dict[str, Any] = {
        # The owner uid is part of the identity, so a re-created ModelEndpoint never adopts
        # resources another (or an earlier) owner may still delete.
        "owner": resource.metadata.uid,
        "image": image,
        "mode": "MultiModel",
        "modelDataUrl": model_data_url(resource),
        "environment": environment,
        "executionRoleArn": spec.execution_role_arn,
    }
    if cache is not None:
        identity["modelCache"] = str(cache)
    name = model_name(resource.endpoint_name, identity)
    request: CreateModelInputTypeDef = {
        "ModelName": name,
        "ExecutionRoleArn": spec.execution_role_arn,
        "PrimaryContainer": {
            "Image": image,
            "Mode": "MultiModel",
            "ModelDataUrl": model_data_url(resource),
        },
        "Tags": tags,
    }
    if environment:
        request["PrimaryContainer"]["Environment"] = environment
    if cache is not None:
        request["PrimaryContainer"]["MultiModelConfig"] = {"ModelCacheSetting": cache.value}
    return DesiredModel(name=name, image=image, request=request)


def desired_endpoint_config(
    resource: ModelEndpoint, model: DesiredModel, tags: list[TagTypeDef]
) -> DesiredEndpointConfig:
    """The EndpointConfig: one AllTraffic variant of ``model`` on the spec's instances."""
    spec = resource.spec
    instance_type = spec.instance_type
    if instance_type is None:
        raise ValueError("spec.instanceType is unset: sizing fills it in before this is built")
    identity: dict[str, Any] = {
        "model": model.name,
        "variant": VARIANT_NAME,
        "instanceType": instance_type,
        "instanceCount": spec.instance_count,
    }
    variant: ProductionVariantTypeDef = {
        "VariantName": VARIANT_NAME,
        "ModelName": model.name,
        # The stubs list every instance type as a Literal; the API takes any string
        # and refuses unknown ones itself.
        "InstanceType": cast(Any, instance_type),
        "InitialInstanceCount": spec.instance_count,
    }
    serving = spec.serving
    if serving and serving.container_startup_health_check_timeout_seconds is not None:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = (
            serving.container_startup_health_check_timeout_seconds
        )
        identity["startupTimeout"] = serving.container_startup_health_check_timeout_seconds
    if serving and serving.model_data_download_timeout_seconds is not None:
        variant["ModelDataDownloadTimeoutInSeconds"] = serving.model_data_download_timeout_seconds
        identity["downloadTimeout"] = serving.model_data_download_timeout_seconds
    name = endpoint_config_name(resource.endpoint_name, identity)
    request: CreateEndpointConfigInputTypeDef = {
        "EndpointConfigName": name,
        "ProductionVariants": [variant],
        "Tags": tags,
    }
    return DesiredEndpointConfig(
        name=name,
        model_name=model.name,
        instance_type=instance_type,
        instance_count=spec.instance_count,
        request=request,
    )


def desired_sagemaker(resource: ModelEndpoint) -> DesiredSageMaker:
    """Model, EndpointConfig and Endpoint for ``resource``; pure, no I/O.

    Raises :class:`~mme_operator.sagemaker.images.ImageLookupError` when no ``spec.image`` is
    set and no SageMaker Triton image is known for the region and ``tritonVersion``.
    """
    tags = ownership_tags(resource)
    model = desired_model(resource, tags)
    config = desired_endpoint_config(resource, model, tags)
    endpoint = DesiredEndpoint(name=resource.endpoint_name, config_name=config.name, tags=tags)
    return DesiredSageMaker(
        owner_uid=resource.metadata.uid, model=model, endpoint_config=config, endpoint=endpoint
    )
