"""The trimmed SageMaker service model: complete for the code, faithful to botocore."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore
import botocore.loaders
import pytest
from mme_operator.sagemaker.botocore_models import DATA_PATH, SAGEMAKER_OPERATIONS
from mme_operator.sagemaker.clients import make_clients
from mme_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SAGEMAKER_CODE = ROOT / "operator" / "mme_operator" / "sagemaker"


def _trimmed() -> dict[str, Any]:
    (path,) = DATA_PATH.glob("sagemaker/*/service-2.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        model: dict[str, Any] = json.load(f)
    return model


def _full() -> dict[str, Any]:
    loader = botocore.loaders.create_loader()
    model: dict[str, Any] = loader.load_service_model("sagemaker", "service-2")
    return model


@pytest.fixture(scope="module")
def clients() -> Any:
    return make_clients("us-east-1", Settings(aws_endpoint_url="http://127.0.0.1:9"))


def test_every_sagemaker_call_in_the_code_is_in_the_trimmed_model(clients: Any) -> None:
    # What the code calls: client methods and paginators, in python names.
    called: set[str] = set()
    for path in SAGEMAKER_CODE.glob("*.py"):
        text = path.read_text()
        called |= set(re.findall(r"self\._client\.([a-z_]+)\(", text))
        called |= set(re.findall(r"get_paginator\(\"([a-z_]+)\"\)", text))
    called.discard("get_paginator")
    assert called, "the pattern no longer finds the calls; fix this test"
    to_api = clients.sagemaker.meta.method_to_api_mapping
    missing = {name for name in called if to_api.get(name) not in SAGEMAKER_OPERATIONS}
    assert missing == set(), (
        f"add {sorted(missing)} to SAGEMAKER_OPERATIONS, then run scripts/trim-botocore-models.py"
    )
    assert set(_trimmed()["operations"]) == set(SAGEMAKER_OPERATIONS)


def test_clients_use_the_trimmed_model_and_one_session_for_all_regions(clients: Any) -> None:
    model = clients.sagemaker.meta.service_model
    assert set(model.operation_names) == set(SAGEMAKER_OPERATIONS)
    assert model.metadata["x-mme-trimmed-from"].startswith("botocore ")
    other = make_clients("eu-west-1", Settings(aws_endpoint_url="http://127.0.0.1:9"))
    assert other.sagemaker.meta.region_name == "eu-west-1"
    # The same decoded model serves both regions (one loader, one copy in memory).
    assert other.sagemaker.meta.service_model._service_description is (model._service_description)
    # The rest still comes from the installed botocore: S3 keeps all its operations.
    assert "PutObject" in clients.s3.meta.service_model.operation_names


def test_every_trimmed_shape_exists_unchanged_in_the_installed_botocore() -> None:
    # Shapes are copied, never edited: each member of each kept shape is in botocore's
    # model with the same target (a newer botocore may add members; none may vanish).
    trimmed, full = _trimmed(), _full()
    for name, shape in trimmed["shapes"].items():
        assert name in full["shapes"], name
        theirs = full["shapes"][name]
        assert shape["type"] == theirs["type"], name
        for member, ref in shape.get("members", {}).items():
            assert member in theirs.get("members", {}), f"{name}.{member}"
            assert ref["shape"] == theirs["members"][member]["shape"], f"{name}.{member}"
    for operation in SAGEMAKER_OPERATIONS:
        ours, theirs = trimmed["operations"][operation], full["operations"][operation]
        assert ours["http"] == theirs["http"]
        assert ours.get("input") == theirs.get("input"), operation


def test_the_trimmed_model_is_what_the_script_writes_from_the_same_botocore() -> None:
    recorded = _trimmed()["metadata"]["x-mme-trimmed-from"]
    if recorded != f"botocore {botocore.__version__}":
        pytest.skip(f"trimmed from {recorded}; installed botocore {botocore.__version__}")
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "trim-botocore-models.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
