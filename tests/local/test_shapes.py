"""Every response carries the members botocore's service model marks required."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

from tests.local.conftest import Stack

SERVICE = botocore.session.get_session().get_service_model("sagemaker")


def missing_required(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Paths of required members absent from ``value``, recursively."""
    missing: list[str] = []
    if isinstance(shape, StructureShape):
        assert isinstance(value, dict), path
        for name in shape.required_members:
            if name not in value:
                missing.append(f"{path}.{name}")
        for name, member in shape.members.items():
            if name in value:
                missing += missing_required(member, value[name], f"{path}.{name}")
    elif isinstance(shape, ListShape):
        for i, item in enumerate(value):
            missing += missing_required(shape.member, item, f"{path}[{i}]")
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            missing += missing_required(shape.value, item, f"{path}.{key}")
    return missing


def check(operation: str, response: dict[str, Any]) -> None:
    shape = SERVICE.operation_model(operation).output_shape
    if shape is None:
        return
    response = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    unknown = set(response) - set(shape.members)
    assert not unknown, f"{operation}: members not in the model: {unknown}"
    assert missing_required(shape, response) == [], operation


def test_responses_have_required_members_in_every_state(stack: Stack) -> None:
    sm = stack.sm
    model = stack.model()
    config = stack.config(model)
    other = stack.config(model, "ml.g4dn.xlarge")
    check("DescribeModel", sm.describe_model(ModelName=model))
    check("DescribeEndpointConfig", sm.describe_endpoint_config(EndpointConfigName=config))

    name = stack.endpoint(config, wait=False)
    check("DescribeEndpoint", sm.describe_endpoint(EndpointName=name))  # Creating
    stack.wait(name, "InService")
    check("DescribeEndpoint", sm.describe_endpoint(EndpointName=name))
    check("UpdateEndpoint", sm.update_endpoint(EndpointName=name, EndpointConfigName=other))
    check("DescribeEndpoint", sm.describe_endpoint(EndpointName=name))  # Updating
    stack.wait(name, "InService")
    check("ListEndpoints", sm.list_endpoints())
    check("ListModels", sm.list_models())
    check("ListEndpointConfigs", sm.list_endpoint_configs())
    arn = sm.describe_endpoint(EndpointName=name)["EndpointArn"]
    check("AddTags", sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]))
    check("ListTags", sm.list_tags(ResourceArn=arn))
    check("DeleteTags", sm.delete_tags(ResourceArn=arn, TagKeys=["k"]))
    sm.delete_endpoint(EndpointName=name)
    check("DescribeEndpoint", sm.describe_endpoint(EndpointName=name))  # Deleting

    failed = stack.endpoint(stack.config(model, "ml.unknown.xlarge"), wait=False)
    check("DescribeEndpoint", stack.wait(failed, "Failed"))
