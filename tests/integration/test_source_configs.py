"""A reconcile pass serves a model directory as it declares: the archive in S3 carries the
source's config.pbtxt with the spec's fields on top, a Normal ConfigMerged event names each
override, and a source MME cannot serve (decoupled) is a SourceError before any upload."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS
from mme_operator.reconcile import reconcile
from mme_operator.sagemaker.clients import make_clients
from mme_operator.settings import Settings
from mme_operator.triton import parse_model_config

BUCKET = "source-configs"
MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    with LocalAWS(endpoint_delay=0.2, triton=False) as local:
        s3(local).create_bucket(Bucket=BUCKET)
        yield local


def s3(aws: LocalAWS) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


def body(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "repos", "namespace": "ml", "uid": "uid-repos", "generation": 1},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": BUCKET, "prefix": "repos/"},
            "instanceType": "ml.g5.xlarge",
            "models": [model],
        },
    }


def one_pass(aws: LocalAWS, root: Path, doc: dict[str, Any]) -> list[tuple[str, str]]:
    settings = Settings(
        aws_endpoint_url=aws.endpoint_url, file_roots=str(root), work_dir=str(root.parent / "work")
    )
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
    )
    events: list[tuple[str, str]] = []
    reconcile(
        doc,
        make_clients("us-east-1", settings, session),
        settings,
        emit=lambda r, m: events.append((r, m)),
    )
    return events


def archived_config(aws: LocalAWS, name: str) -> str:
    client = s3(aws)
    (key,) = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="repos/")["Contents"]]
    data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(f"{name}/config.pbtxt")
        assert member is not None
        return member.read().decode()


def test_a_directory_given_by_name_and_source_is_uploaded_with_its_config(
    aws: LocalAWS, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(MODELS / "add_sub", root / "add_sub")
    model = {"name": "add-sub", "source": (root / "add_sub").as_uri(), "maxBatchSize": 4}
    events = one_pass(aws, root, body(model))
    config = parse_model_config(archived_config(aws, "add-sub"))
    assert [t.name for t in config.output] == ["OUTPUT0", "OUTPUT1"]  # the source's, kept
    assert (config.name, config.backend, config.max_batch_size) == ("add-sub", "python", 4)
    merged = [m for r, m in events if r == "ConfigMerged"]
    assert merged == [
        "model 'add-sub': config.pbtxt is the source's with the spec's fields: "
        'name: "add_sub" -> "add-sub" (from the spec); max_batch_size: added 4 (from the spec)'
    ]


def test_a_decoupled_source_is_a_source_error_and_nothing_is_uploaded(
    aws: LocalAWS, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(MODELS / "add_sub", root / "add_sub")
    with (root / "add_sub" / "config.pbtxt").open("a") as f:
        f.write("model_transaction_policy { decoupled: true }\n")
    events = one_pass(aws, root, body({"name": "add-sub", "source": (root / "add_sub").as_uri()}))
    errors = [m for r, m in events if r == "SourceError"]
    assert len(errors) == 1 and "decoupled transaction policy" in errors[0]
    assert "Contents" not in s3(aws).list_objects_v2(Bucket=BUCKET, Prefix="repos/")
