"""spec.serving: Triton and SageMaker knobs as fields, refused where SageMaker refuses them."""

import pytest
from mme_operator.api import validate_resource

from tests.unit.test_api_validation import with_change


def problems_of(serving, environment=None):  # type: ignore[no-untyped-def]
    doc = with_change("spec.serving", serving)
    if environment is not None:
        doc["spec"]["environment"] = environment
    resource, problems = validate_resource(doc)
    return resource, [str(p) for p in problems]


def test_serving_fields_parse() -> None:
    resource, problems = problems_of(
        {
            "modelLoadGpuLimit": 0.75,
            "logVerbosity": 1,
            "modelCache": "Disabled",
            "containerStartupHealthCheckTimeoutSeconds": 600,
            "modelDataDownloadTimeoutSeconds": 3600,
        }
    )
    assert problems == []
    assert resource is not None and resource.spec.serving is not None
    assert resource.spec.serving.model_load_gpu_limit == 0.75


@pytest.mark.parametrize(
    ("serving", "field"),
    [
        ({"modelLoadGpuLimit": 0}, "spec.serving.modelLoadGpuLimit"),
        ({"modelLoadGpuLimit": 1.5}, "spec.serving.modelLoadGpuLimit"),
        ({"modelCache": "Sometimes"}, "spec.serving.modelCache"),
        ({"containerStartupHealthCheckTimeoutSeconds": 59}, "spec.serving.containerStartup"),
        ({"modelDataDownloadTimeoutSeconds": 3601}, "spec.serving.modelDataDownloadTimeout"),
        ({"logVerbosity": -1}, "spec.serving.logVerbosity"),
    ],
)
def test_values_sagemaker_or_triton_refuse_are_refused_naming_the_field(serving, field):  # type: ignore[no-untyped-def]
    resource, problems = problems_of(serving)
    assert resource is None
    assert any(line.startswith(field) for line in problems), problems


def test_a_knob_set_both_as_field_and_as_environment_is_refused() -> None:
    resource, problems = problems_of(
        {"logVerbosity": 1}, environment={"SAGEMAKER_TRITON_LOG_VERBOSE": "3"}
    )
    assert resource is None
    assert any(
        line.startswith("spec.environment") and "spec.serving.logVerbosity" in line
        for line in problems
    ), problems
