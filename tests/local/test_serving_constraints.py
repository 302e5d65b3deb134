"""Serving settings outside SageMaker's constraints are refused in SageMaker's words."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.local.conftest import ROLE, TRITON_IMAGE, Stack, unique


def test_variant_timeouts_and_model_cache_setting_are_checked_as_sagemaker_does(
    stack: Stack,
) -> None:
    model = stack.model()
    good = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InstanceType": "ml.g5.xlarge",
        "InitialInstanceCount": 1,
        "ContainerStartupHealthCheckTimeoutInSeconds": 3600,
        "ModelDataDownloadTimeoutInSeconds": 60,
    }
    stack.sm.create_endpoint_config(EndpointConfigName=unique("ok"), ProductionVariants=[good])
    too_long = {**good, "ModelDataDownloadTimeoutInSeconds": 3601}
    with pytest.raises(ClientError) as excinfo:
        stack.sm.create_endpoint_config(
            EndpointConfigName=unique("bad"), ProductionVariants=[too_long]
        )
    message = excinfo.value.response["Error"]["Message"]
    assert "productionVariants.1.member.modelDataDownloadTimeoutInSeconds" in message
    assert "less than or equal to 3600" in message

    with pytest.raises(ClientError, match="enum value set: \\[Enabled, Disabled\\]"):
        stack.sm.create_model(
            ModelName=unique("m"),
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": TRITON_IMAGE,
                "ModelDataUrl": f"s3://{stack.bucket}/mme/",
                "Mode": "MultiModel",
                "MultiModelConfig": {"ModelCacheSetting": "Sometimes"},
            },
        )
