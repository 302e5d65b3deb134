"""The default serving image comes from the table shipped in the package."""

import pytest
from mme_operator.sagemaker import (
    ImageLookupError,
    UnknownRegionError,
    UnknownTritonVersionError,
    default_image,
    supported_regions,
    supported_triton_versions,
)
from mme_operator.sagemaker.images import ecr_dns_suffix


def test_us_east_1_image_is_in_the_dlc_account() -> None:
    assert (
        default_image("us-east-1", "24.09")
        == "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
    )


def test_regions_with_their_own_registry_account() -> None:
    assert default_image("af-south-1", "24.05").startswith("626614931356.dkr.ecr.af-south-1.")
    assert default_image("ap-northeast-3", "24.01").startswith("364406365360.")


def test_china_regions_use_the_china_dns_suffix() -> None:
    assert (
        default_image("cn-north-1", "24.09")
        == "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-tritonserver:24.09-py3"
    )
    assert ecr_dns_suffix("eu-west-1") == "amazonaws.com"


def test_the_api_default_triton_version_has_an_image() -> None:
    from mme_operator.api.spec import DEFAULT_TRITON_VERSION

    assert DEFAULT_TRITON_VERSION in supported_triton_versions()


def test_unknown_region_lists_the_supported_regions() -> None:
    with pytest.raises(UnknownRegionError) as caught:
        default_image("mars-north-1", "24.09")
    message = str(caught.value)
    assert "mars-north-1" in message
    assert "us-east-1" in message and "eu-west-1" in message
    assert isinstance(caught.value, ImageLookupError) and isinstance(caught.value, ValueError)


def test_unknown_triton_version_lists_the_known_versions() -> None:
    with pytest.raises(UnknownTritonVersionError) as caught:
        default_image("us-east-1", "19.01")
    assert "19.01" in str(caught.value)
    for version in supported_triton_versions():
        assert version in str(caught.value)


def test_versions_are_sorted_oldest_first() -> None:
    versions = supported_triton_versions()
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))
    assert "us-west-2" in supported_regions(versions[-1])
    assert supported_regions("19.01") == []
