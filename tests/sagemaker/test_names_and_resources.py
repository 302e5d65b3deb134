"""Names carry identity: only endpoint-level changes give a new Model or EndpointConfig."""

import re

from mme_operator.sagemaker import (
    desired_sagemaker,
    endpoint_config_name,
    model_name,
    ownership_tags,
)
from mme_operator.sagemaker.names import derived_name_pattern
from mme_operator.sagemaker.resources import OWNER_TAG, OWNER_UID_TAG

from tests.sagemaker.examples import GOOD, make_resource

VALID_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


def test_names_are_deterministic_and_ignore_key_order() -> None:
    assert model_name("ep", {"a": 1, "b": [1, 2]}) == model_name("ep", {"b": [1, 2], "a": 1})
    assert endpoint_config_name("ep", {"x": "y"}) == endpoint_config_name("ep", {"x": "y"})
    assert model_name("ep", {"a": 1}) != model_name("ep", {"a": 2})
    assert re.fullmatch(r"ep-[0-9a-f]{10}", model_name("ep", {"a": 1}))


def test_model_and_config_names_differ_for_the_same_content() -> None:
    assert model_name("ep", {"a": 1}) != endpoint_config_name("ep", {"a": 1})


def test_long_endpoint_names_are_cut_to_63_valid_characters() -> None:
    long = "a" * 51 + "-" + "b" * 11  # the cut falls just after the dash
    for name in (model_name(long, {}), endpoint_config_name(long, {"k": "v"})):
        assert len(name) <= 63
        assert VALID_NAME.match(name), name
        assert derived_name_pattern(long).match(name)


def test_derived_name_pattern_does_not_match_a_longer_endpoints_names() -> None:
    other = model_name("small-llms-2", {})
    assert not derived_name_pattern("small-llms").match(other)
    assert derived_name_pattern("small-llms").match(model_name("small-llms", {}))


def test_desired_resources_from_a_model_endpoint() -> None:
    desired = desired_sagemaker(make_resource())
    model = desired.model.request
    assert desired.endpoint.name == "ml-small-llms-f9c27941"
    assert model["ModelName"] == desired.model.name
    assert model["PrimaryContainer"] == {
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3",
        "Mode": "MultiModel",
        "ModelDataUrl": "s3://my-models/mme/small-llms/",
        # Triton's verbose log is off by default (the image turns it on when unset).
        "Environment": {"SAGEMAKER_TRITON_LOG_VERBOSE": "0"},
    }
    assert model["ExecutionRoleArn"] == GOOD["spec"]["executionRoleArn"]
    assert desired.endpoint_config.request["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": desired.model.name,
            "InstanceType": "ml.g5.xlarge",
            "InitialInstanceCount": 1,
        }
    ]
    assert desired.endpoint.config_name == desired.endpoint_config.name
    assert desired.endpoint.request["EndpointConfigName"] == desired.endpoint_config.name
    for name in (desired.model.name, desired.endpoint_config.name):
        assert name.startswith("ml-small-llms-") and len(name) <= 63


def test_default_prefix_is_namespace_and_name() -> None:
    resource = make_resource(artifacts={"bucket": "my-models"})
    assert (
        desired_sagemaker(resource).model.request["PrimaryContainer"]["ModelDataUrl"]
        == "s3://my-models/ml/small-llms/"
    )


def test_adding_or_changing_models_keeps_every_name() -> None:
    before = desired_sagemaker(make_resource())
    models = [
        *GOOD["spec"]["models"],
        {"name": "echo", "source": "file:///models/echo", "backend": "python"},
    ]
    models[0] = {**models[0], "maxBatchSize": 8}
    after = desired_sagemaker(make_resource(models=models))
    assert after.model.name == before.model.name
    assert after.endpoint_config.name == before.endpoint_config.name


def test_tags_and_autoscaling_do_not_change_names() -> None:
    before = desired_sagemaker(make_resource())
    after = desired_sagemaker(
        make_resource(
            tags={"team": "ml"},
            autoscaling={"maxInstances": 3, "targetInvocationsPerInstance": 100},
        )
    )
    assert (after.model.name, after.endpoint_config.name) == (
        before.model.name,
        before.endpoint_config.name,
    )


def test_instance_type_or_count_changes_only_the_config() -> None:
    before = desired_sagemaker(make_resource())
    for change in ({"instanceType": "ml.g5.2xlarge"}, {"instanceCount": 2}):
        after = desired_sagemaker(make_resource(**change))
        assert after.model.name == before.model.name
        assert after.endpoint_config.name != before.endpoint_config.name


def test_image_or_environment_changes_model_and_config() -> None:
    before = desired_sagemaker(make_resource())
    for change in (
        {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/triton:custom"},
        {"tritonVersion": "24.05"},
        {"environment": {"SAGEMAKER_TRITON_LOG_VERBOSE": "false"}},
    ):
        after = desired_sagemaker(make_resource(**change))
        assert after.model.name != before.model.name
        assert after.endpoint_config.name != before.endpoint_config.name


def test_spec_environment_goes_to_the_container_as_is() -> None:
    environment = {
        "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE": "67108864",
        "SAGEMAKER_TRITON_LOG_VERBOSE": "1",
    }
    desired = desired_sagemaker(make_resource(environment=environment))
    assert desired.model.request["PrimaryContainer"]["Environment"] == environment


def test_serving_fields_become_container_environment_model_config_and_variant() -> None:
    serving = {
        "modelLoadGpuLimit": 0.8,
        "logVerbosity": 2,
        "modelCache": "Disabled",
        "containerStartupHealthCheckTimeoutSeconds": 900,
        "modelDataDownloadTimeoutSeconds": 1200,
    }
    plain = desired_sagemaker(make_resource())
    desired = desired_sagemaker(make_resource(serving=serving))
    container = desired.model.request["PrimaryContainer"]
    assert container["Environment"] == {
        "SAGEMAKER_TRITON_LOG_VERBOSE": "2",
        "SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT": "0.8",
    }
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}
    [variant] = desired.endpoint_config.request["ProductionVariants"]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 1200
    # Each is part of the resources' identity: a change rolls a new Model / EndpointConfig.
    assert desired.model.name != plain.model.name
    assert desired.endpoint_config.name != plain.endpoint_config.name


def test_spec_image_overrides_the_default() -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/triton:custom"
    desired = desired_sagemaker(make_resource(image=image))
    assert desired.model.request["PrimaryContainer"]["Image"] == image


def test_another_owner_gets_other_names() -> None:
    ours = desired_sagemaker(make_resource())
    theirs = desired_sagemaker(make_resource(metadata={"uid": "uid-other"}))
    assert ours.model.name != theirs.model.name
    assert ours.endpoint_config.name != theirs.endpoint_config.name


def test_ownership_tags_come_first_and_user_tags_cannot_override_them() -> None:
    # Admission refuses such tags (test_admission); this is the second line of defence,
    # for a resource that reached the operator some other way.
    resource = make_resource()
    resource.spec.tags = {
        "team": "ml",
        "mme-operator.io/owner-uid": "forged",
        "MME-Operator.io/owner": "forged",
        "cost-center": "42",
    }
    tags = ownership_tags(resource)
    assert tags == [
        {"Key": OWNER_UID_TAG, "Value": "uid-1234"},
        {"Key": OWNER_TAG, "Value": "ml/small-llms"},
        {"Key": "mme-operator.io/managed-by", "Value": "mme-operator"},
        {"Key": "cost-center", "Value": "42"},
        {"Key": "team", "Value": "ml"},
    ]
    desired = desired_sagemaker(resource)
    assert desired.model.request["Tags"] == tags
    assert desired.endpoint_config.request["Tags"] == tags
    assert desired.endpoint.tags == tags
