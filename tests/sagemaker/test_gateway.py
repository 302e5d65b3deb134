"""The gateway against a moto SageMaker over HTTP: idempotent creates, owned-only deletes."""

from typing import Any

import boto3
import pytest
from mme_operator.sagemaker import (
    DesiredSageMaker,
    NotOwnedError,
    SageMakerGateway,
    desired_sagemaker,
)
from mme_operator.sagemaker.clients import make_clients
from mme_operator.sagemaker.resources import OWNER_UID_TAG
from mme_operator.settings import Settings

from tests.sagemaker.examples import GOOD, make_resource

# moto knows no GPU instance types.
INSTANCE_TYPE = "ml.m5.large"


@pytest.fixture
def desired() -> DesiredSageMaker:
    return desired_sagemaker(make_resource(instanceType=INSTANCE_TYPE))


def create_all(gateway: SageMakerGateway, desired: DesiredSageMaker) -> None:
    gateway.create_model(desired.model)
    gateway.create_endpoint_config(desired.endpoint_config)
    gateway.create_endpoint(desired.endpoint)


def create_foreign_model(sagemaker: Any, name: str, tags: list[Any] | None = None) -> None:
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=GOOD["spec"]["executionRoleArn"],
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        Tags=tags or [],
    )


def test_nothing_there_reads_as_none(gateway: SageMakerGateway) -> None:
    assert gateway.describe_endpoint("ml-small-llms") is None
    assert gateway.describe_endpoint_config("ml-small-llms-0123456789") is None
    assert gateway.describe_model("ml-small-llms-0123456789") is None


def test_create_everything_then_read_it_back(
    gateway: SageMakerGateway, desired: DesiredSageMaker
) -> None:
    model = gateway.create_model(desired.model)
    config = gateway.create_endpoint_config(desired.endpoint_config)
    endpoint = gateway.create_endpoint(desired.endpoint)
    assert model.created and config.created and endpoint.created

    state = gateway.describe_endpoint(desired.endpoint.name)
    assert state is not None
    assert state.arn == endpoint.arn
    assert state.config_name == desired.endpoint_config.name
    assert state.status in {"Creating", "InService"}
    assert state.pending_config_name is None

    described = gateway.describe_model(desired.model.name)
    assert described is not None
    assert described["PrimaryContainer"]["Mode"] == "MultiModel"
    assert gateway.tags_of(model.arn)[OWNER_UID_TAG] == "uid-1234"
    assert gateway.tags_of(config.arn)["mme-operator.io/owner"] == "ml/small-llms"


def test_creating_twice_is_harmless(
    gateway: SageMakerGateway, sagemaker: Any, desired: DesiredSageMaker
) -> None:
    first = [
        gateway.create_model(desired.model).arn,
        gateway.create_endpoint_config(desired.endpoint_config).arn,
        gateway.create_endpoint(desired.endpoint).arn,
    ]
    second = [
        gateway.create_model(desired.model).arn,
        gateway.create_endpoint_config(desired.endpoint_config).arn,
        gateway.create_endpoint(desired.endpoint).arn,
    ]
    assert first == second
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [desired.model.name]
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(sagemaker.list_endpoints()["Endpoints"]) == 1


def test_deleting_ours_works_and_again_is_success(
    gateway: SageMakerGateway, desired: DesiredSageMaker
) -> None:
    create_all(gateway, desired)
    uid = desired.owner_uid
    assert gateway.delete_endpoint(desired.endpoint.name, uid) is True
    assert gateway.delete_endpoint_config(desired.endpoint_config.name, uid) is True
    assert gateway.delete_model(desired.model.name, uid) is True
    assert gateway.describe_endpoint(desired.endpoint.name) is None
    assert gateway.describe_model(desired.model.name) is None

    assert gateway.delete_endpoint(desired.endpoint.name, uid) is False
    assert gateway.delete_endpoint_config(desired.endpoint_config.name, uid) is False
    assert gateway.delete_model(desired.model.name, uid) is False


def test_a_foreign_untagged_model_is_left_in_place(
    gateway: SageMakerGateway, sagemaker: Any
) -> None:
    create_foreign_model(sagemaker, "ml-small-llms-0123456789")
    with pytest.raises(NotOwnedError) as caught:
        gateway.delete_model("ml-small-llms-0123456789", "uid-1234")
    assert "no owner-uid tag" in str(caught.value)
    assert gateway.describe_model("ml-small-llms-0123456789") is not None


def test_another_owners_endpoint_is_left_in_place(
    gateway: SageMakerGateway, desired: DesiredSageMaker
) -> None:
    create_all(gateway, desired)
    with pytest.raises(NotOwnedError):
        gateway.delete_endpoint(desired.endpoint.name, "uid-somebody-else")
    with pytest.raises(NotOwnedError):
        gateway.delete_endpoint_config(desired.endpoint_config.name, "uid-somebody-else")
    assert gateway.describe_endpoint(desired.endpoint.name) is not None
    assert gateway.describe_endpoint_config(desired.endpoint_config.name) is not None


def test_an_empty_owner_uid_is_refused(gateway: SageMakerGateway, sagemaker: Any) -> None:
    create_foreign_model(
        sagemaker, "ml-small-llms-0123456789", [{"Key": OWNER_UID_TAG, "Value": ""}]
    )
    with pytest.raises(ValueError, match="owner_uid is empty"):
        gateway.delete_model("ml-small-llms-0123456789", "")


def test_listing_finds_only_our_superseded_configs_and_models(
    gateway: SageMakerGateway, sagemaker: Any
) -> None:
    named = {"instanceType": INSTANCE_TYPE, "endpointName": "ml-small-llms"}
    old = desired_sagemaker(make_resource(**named))
    new = desired_sagemaker(make_resource(**named, instanceCount=2))
    other_endpoint = desired_sagemaker(
        make_resource(instanceType=INSTANCE_TYPE, endpointName="ml-small-llms-2")
    )
    for desired in (old, new, other_endpoint):
        gateway.create_model(desired.model)
        gateway.create_endpoint_config(desired.endpoint_config)
    create_foreign_model(sagemaker, "ml-small-llms-abcdef0123")  # our name pattern, no tag

    configs = gateway.list_owned_endpoint_configs("ml-small-llms", "uid-1234")
    assert [c.name for c in configs] == [old.endpoint_config.name, new.endpoint_config.name]
    models = gateway.list_owned_models("ml-small-llms", "uid-1234")
    # A count change keeps the model: one model for both configs.
    assert [m.name for m in models] == [old.model.name]
    assert gateway.list_owned_models("ml-small-llms", "uid-nobody") == []


def test_invoke_needs_a_runtime_client(gateway: SageMakerGateway) -> None:
    with pytest.raises(RuntimeError, match="sagemaker-runtime"):
        gateway.invoke("ml-small-llms", "bert-abc.tar.gz", b"{}", "application/json")


def test_make_clients_talks_to_the_configured_endpoint(aws: str) -> None:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    clients = make_clients("us-east-1", Settings(aws_endpoint_url=aws), session)
    assert clients.sagemaker.meta.endpoint_url == aws
    assert clients.s3.meta.config.s3 == {"addressing_style": "path"}
    assert clients.gateway().describe_endpoint("ml-small-llms") is None
