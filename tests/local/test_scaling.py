"""Variant capacity in the local SageMaker: scaling, RetainAllVariantProperties, and the
refusal of an instance-type change on a variant Application Auto Scaling manages."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.local.conftest import Stack


def scale(stack: Stack, endpoint: str, count: int) -> None:
    """What Application Auto Scaling does when it scales the variant out or in."""
    stack.sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": count}],
    )
    stack.wait(endpoint, "Updating")
    stack.wait(endpoint, "InService")


def instances(stack: Stack, endpoint: str) -> int:
    [variant] = stack.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]
    assert variant["DesiredInstanceCount"] == variant["CurrentInstanceCount"]
    return int(variant["CurrentInstanceCount"])


def test_scaling_changes_the_live_instance_count(stack: Stack) -> None:
    name = stack.endpoint(stack.config(stack.model()))
    scale(stack, name, 3)
    assert instances(stack, name) == 3


def test_update_without_retain_takes_the_new_configs_count(stack: Stack) -> None:
    model = stack.model()
    name = stack.endpoint(stack.config(model))
    scale(stack, name, 3)
    stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=stack.config(stack.model()))
    stack.wait(name, "InService")
    assert instances(stack, name) == 1


def test_update_with_retain_keeps_the_live_instance_count(stack: Stack) -> None:
    name = stack.endpoint(stack.config(stack.model()))
    scale(stack, name, 3)
    stack.sm.update_endpoint(
        EndpointName=name,
        EndpointConfigName=stack.config(stack.model()),
        RetainAllVariantProperties=True,
    )
    stack.wait(name, "InService")
    assert instances(stack, name) == 3


def test_retain_with_desired_instance_count_excluded_takes_the_configs_count(
    stack: Stack,
) -> None:
    name = stack.endpoint(stack.config(stack.model()))
    scale(stack, name, 3)
    stack.sm.update_endpoint(
        EndpointName=name,
        EndpointConfigName=stack.config(stack.model()),
        RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredInstanceCount"}],
    )
    stack.wait(name, "InService")
    assert instances(stack, name) == 1


def test_instance_type_change_of_an_autoscaled_variant_is_refused(stack: Stack) -> None:
    model = stack.model()
    name = stack.endpoint(stack.config(model))
    autoscaling = stack.aws.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{name}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    autoscaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)

    with pytest.raises(ClientError) as excinfo:
        stack.sm.update_endpoint(
            EndpointName=name, EndpointConfigName=stack.config(model, "ml.g5.2xlarge")
        )
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "deregister" in error["Message"]
    assert stack.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"

    # Changing only the model of an autoscaled variant is allowed, as on SageMaker.
    stack.sm.update_endpoint(EndpointName=name, EndpointConfigName=stack.config(stack.model()))
    stack.wait(name, "InService")

    autoscaling.deregister_scalable_target(**target)
    stack.sm.update_endpoint(
        EndpointName=name, EndpointConfigName=stack.config(model, "ml.g5.2xlarge")
    )
    stack.wait(name, "InService")


def test_scaling_an_unknown_variant_is_refused(stack: Stack) -> None:
    name = stack.endpoint(stack.config(stack.model()))
    with pytest.raises(ClientError, match="not present"):
        stack.sm.update_endpoint_weights_and_capacities(
            EndpointName=name,
            DesiredWeightsAndCapacities=[{"VariantName": "Other", "DesiredInstanceCount": 2}],
        )
