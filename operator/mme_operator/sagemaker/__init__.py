"""SageMaker Model / EndpointConfig / Endpoint, autoscaling and image URIs.

Pure parts (``images``, ``names``, ``resources``, ``desired_scaling``, ``errors``) build and
judge data; ``SageMakerGateway`` and the autoscaling functions make the calls.
"""

from mme_operator.sagemaker.autoscaling import (
    DesiredScaling,
    ObservedScaling,
    apply_scaling,
    desired_scaling,
    observe_scaling,
    remove_scaling,
)
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.sagemaker.errors import (
    ErrorClass,
    boto_config,
    classify,
    describe_error,
    error_code,
    is_already_exists,
)
from mme_operator.sagemaker.gateway import (
    CreateResult,
    EndpointState,
    NotOwnedError,
    OwnedResource,
    SageMakerGateway,
)
from mme_operator.sagemaker.images import (
    ImageLookupError,
    UnknownRegionError,
    UnknownTritonVersionError,
    default_image,
    supported_regions,
    supported_triton_versions,
)
from mme_operator.sagemaker.names import endpoint_config_name, model_name
from mme_operator.sagemaker.resources import (
    DesiredEndpoint,
    DesiredEndpointConfig,
    DesiredModel,
    DesiredSageMaker,
    desired_sagemaker,
    ownership_tags,
)

__all__ = [
    "AwsClients",
    "CreateResult",
    "DesiredEndpoint",
    "DesiredEndpointConfig",
    "DesiredModel",
    "DesiredSageMaker",
    "DesiredScaling",
    "EndpointState",
    "ErrorClass",
    "ImageLookupError",
    "NotOwnedError",
    "ObservedScaling",
    "OwnedResource",
    "SageMakerGateway",
    "UnknownRegionError",
    "UnknownTritonVersionError",
    "apply_scaling",
    "boto_config",
    "classify",
    "default_image",
    "describe_error",
    "desired_sagemaker",
    "desired_scaling",
    "endpoint_config_name",
    "error_code",
    "is_already_exists",
    "make_clients",
    "model_name",
    "observe_scaling",
    "ownership_tags",
    "remove_scaling",
    "supported_regions",
    "supported_triton_versions",
]
