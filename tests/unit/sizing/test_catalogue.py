"""The instance catalogue as data: MME refusals, prices with sources, a user's extension file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mme_operator.sizing import build_catalogue, get_catalogue
from mme_operator.sizing.catalogue import CatalogueError, builtin_document

from tests.unit.api.documents import MINIMAL, changed

GPU_MME_TYPES = [
    *(f"ml.g4dn.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")),
    *(f"ml.g5.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")),
    "ml.p3.2xlarge",
    "ml.p2.xlarge",
]


def validate(tmp_path: Path, instance_type: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "mep.yaml"
    path.write_text(yaml.safe_dump(changed(MINIMAL, "spec.instanceType", instance_type)))
    return subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_every_gpu_mme_type_is_single_gpu_with_its_gpu_memory() -> None:
    catalogue = get_catalogue()
    gpu = {t.name: t for t in catalogue if t.multi_model == "gpu"}
    assert sorted(gpu) == sorted(GPU_MME_TYPES)
    assert all(t.gpus == 1 for t in gpu.values())
    memory = {t.gpu_model: t.gpu_memory_gib for t in gpu.values()}
    assert memory == {"NVIDIA T4": 16, "NVIDIA A10G": 24, "NVIDIA V100": 16, "NVIDIA K80": 12}


def test_every_price_names_its_source_and_date() -> None:
    for instance in get_catalogue():
        for region, price in instance.prices.items():
            assert price.usd_per_hour > 0, (instance.name, region)
            assert price.source and price.read == "2026-11-25", (instance.name, region)
    assert get_catalogue().price("ml.g4dn.xlarge", "us-east-1") == 0.7364


@pytest.mark.parametrize(
    ("instance_type", "why"),
    [
        ("ml.g5.12xlarge", "4 GPUs"),
        ("ml.p4d.24xlarge", "8 GPUs"),
        ("ml.inf2.xlarge", "Inferentia2"),
        ("ml.zz9.xlarge", "not a known"),
    ],
)
def test_validate_refuses_a_type_an_mme_cannot_run_on(
    tmp_path: Path, instance_type: str, why: str
) -> None:
    result = validate(tmp_path, instance_type)

    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stdout.strip() + result.stderr.strip()
    assert f"spec.instanceType: {instance_type}" in line
    assert why in line
    assert "ml.g5.{xlarge," in line  # says what to use instead
    assert "Traceback" not in line


def test_cpu_and_single_gpu_types_pass(tmp_path: Path) -> None:
    for instance_type in ("ml.g4dn.xlarge", "ml.p2.xlarge", "ml.m5.large"):
        assert validate(tmp_path, instance_type).returncode == 0


def test_a_catalogue_file_adds_a_type_aws_lists_later_and_overrides_prices(
    tmp_path: Path,
) -> None:
    extra = tmp_path / "catalogue.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "types": [
                    {"name": "ml.g6.xlarge", "multiModel": "gpu"},
                    {
                        "name": "ml.g7.xlarge",
                        "vcpus": 4,
                        "memoryGiB": 16,
                        "gpus": 1,
                        "gpuModel": "NVIDIA Future",
                        "gpuMemoryGiB": 32,
                    },
                    {
                        "name": "ml.g5.xlarge",
                        "prices": {"us-east-1": {"usdPerHour": 1.0, "source": "our contract"}},
                    },
                ]
            }
        )
    )
    catalogue = build_catalogue(builtin_document(), extra.read_text(), price_factor=0.5)

    assert catalogue.refusal("ml.g6.xlarge") is None
    assert catalogue.refusal("ml.g7.xlarge") is None
    assert catalogue.price("ml.g5.xlarge", "us-east-1") == 0.5
    assert catalogue.price("ml.g4dn.xlarge", "us-east-1") == 0.3682
    # Through the setting, as the operator and `validate` read it.
    assert validate(tmp_path, "ml.g6.xlarge").returncode == 2
    result = validate(tmp_path, "ml.g6.xlarge", MME_INSTANCE_CATALOGUE_FILE=str(extra))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "ml.x.large"}, "needs vcpus and memoryGiB"),
        ({"name": "ml.g5.48xlarge", "multiModel": "gpu"}, "exactly one GPU"),
        ({"name": "ml.g5.xlarge", "prices": {"us-east-1": {"usdPerHour": "cheap"}}}, "not a price"),
        ({"name": "ml.g5.xlarge", "colour": "red"}, "unknown fields"),
    ],
)
def test_a_malformed_catalogue_file_is_one_clear_error(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(CatalogueError, match=message):
        build_catalogue(builtin_document(), json.dumps({"types": [entry]}))


def test_an_unreadable_catalogue_file_is_a_one_line_problem(tmp_path: Path) -> None:
    result = validate(tmp_path, "ml.g5.xlarge", MME_INSTANCE_CATALOGUE_FILE=str(tmp_path / "nope"))

    assert result.returncode == 2
    assert "MME_INSTANCE_CATALOGUE_FILE" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_without_instance_type_sizing_is_needed_and_its_families_checked(tmp_path: Path) -> None:
    path = tmp_path / "mep.yaml"
    bare = changed(MINIMAL, "spec.instanceType", None)
    del bare["spec"]["instanceType"]
    path.write_text(yaml.safe_dump(bare))
    cli = [sys.executable, "-m", "mme_operator.cli", "validate", "-f", str(path)]

    missing = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2
    assert "spec.instanceType: required field is missing: set instanceType, or sizing" in (
        missing.stderr
    )

    bare["spec"]["sizing"] = {"allowedFamilies": ["ml.g5", "ml.p4d"]}
    path.write_text(yaml.safe_dump(bare))
    wrong = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 2
    assert "spec.sizing.allowedFamilies[1]: ml.p4d has no instance type" in wrong.stderr

    bare["spec"]["sizing"] = {"allowedFamilies": ["ml.g5"]}
    path.write_text(yaml.safe_dump(bare))
    ok = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
