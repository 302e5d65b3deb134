"""The default serving image: the SageMaker Triton image for a region and Triton release.

The registry account of each region comes from ``images.json``, shipped with the package and
copied from the SageMaker Python SDK's image-URI config for ``sagemaker-tritonserver``; the
operator never looks image URIs up over the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mme_operator.api import ModelEndpointSpec, Problem


class ImageLookupError(ValueError):
    """No default image is known for the requested region or Triton release."""


class UnknownRegionError(ImageLookupError):
    """The region has no SageMaker Triton image registry in the shipped table."""


class UnknownTritonVersionError(ImageLookupError):
    """The Triton release has no SageMaker Triton image in the shipped table."""


@dataclass(frozen=True)
class _ImageTable:
    repository: str
    tag_suffix: str
    # version -> region -> registry account
    registries: dict[str, dict[str, str]]


@lru_cache(maxsize=1)
def _table() -> _ImageTable:
    text = resources.files(__package__).joinpath("images.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    return _ImageTable(
        repository=doc["repository"],
        tag_suffix=doc["tagSuffix"],
        registries={v: dict(entry["registries"]) for v, entry in doc["versions"].items()},
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def supported_triton_versions() -> list[str]:
    """Triton releases with a known SageMaker Triton image, oldest first."""
    return sorted(_table().registries, key=_version_key)


def supported_regions(triton_version: str) -> list[str]:
    """Regions with a SageMaker Triton image for ``triton_version``, sorted."""
    return sorted(_table().registries.get(triton_version, {}))


def ecr_dns_suffix(region: str) -> str:
    """DNS suffix of ECR in ``region``: the China partition has its own."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def default_image(region: str, triton_version: str) -> str:
    """URI of the SageMaker Triton image, e.g.
    ``763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3``.

    Raises :class:`UnknownTritonVersionError` or :class:`UnknownRegionError`, whose message
    lists what is supported, so it can be shown to the user as-is.
    """
    table = _table()
    registries = table.registries.get(triton_version)
    if registries is None:
        raise UnknownTritonVersionError(
            f"no SageMaker Triton image is known for tritonVersion {triton_version!r}; "
            f"supported: {', '.join(supported_triton_versions())} (or set spec.image)"
        )
    account = registries.get(region)
    if account is None:
        raise UnknownRegionError(
            f"no SageMaker Triton image {triton_version} is known in region {region!r}; "
            f"supported regions: {', '.join(sorted(registries))} (or set spec.image)"
        )
    return (
        f"{account}.dkr.ecr.{region}.{ecr_dns_suffix(region)}/"
        f"{table.repository}:{triton_version}{table.tag_suffix}"
    )


def image_problems(spec: ModelEndpointSpec, root: str = "spec") -> list[Problem]:
    """``tritonVersion`` and ``region`` checked against the shipped image table.

    Only when ``spec.image`` is unset: a user-supplied image needs no table entry. Run at
    admission (``validate``, the operator's parse), not first at image lookup.
    """
    if spec.image is not None:
        return []
    versions = supported_triton_versions()
    if spec.triton_version not in versions:
        return [
            Problem(
                f"{root}.tritonVersion",
                f"no SageMaker Triton image is known for {spec.triton_version!r}; supported: "
                f"{', '.join(versions)} (or set {root}.image)",
            )
        ]
    regions = supported_regions(spec.triton_version)
    if spec.region not in regions:
        return [
            Problem(
                f"{root}.region",
                f"no SageMaker Triton image {spec.triton_version} is known in {spec.region!r}; "
                f"supported regions: {', '.join(regions)} (or set {root}.image)",
            )
        ]
    return []
