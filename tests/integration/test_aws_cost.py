"""What a reconcile pass costs in AWS requests, counted on the wire for a 100-model endpoint.

The reconcile runs as the handlers run it (status fed back into the next pass) against the
local SageMaker and moto's S3 over HTTP; every request the operator's clients send,
retries included, is counted by operation with botocore's ``request-created`` event.
Archive ownership is read (one HEAD) only where it decides something: a key this
ModelEndpoint did not record as its own, or a key about to be deleted.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from mme_operator.artifacts.store import forget_ownership
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS
from mme_operator.reconcile import check_drift, reconcile
from mme_operator.reconcile.engine import Outcome
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.settings import Settings

MODELS = 100
BUCKET = "cost-artifacts"
PREFIX = "mme/cost/"
OWNER = "0b0b0b0b-0000-4000-8000-00000000c057"


class Wire:
    """Counts every request the clients send, by ``service:Operation``."""

    def __init__(self, clients: AwsClients) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        for client in (clients.s3, clients.sagemaker, clients.runtime, clients.autoscaling):
            client.meta.events.register("request-created", self._count)

    def _count(self, operation_name: str, **kwargs: Any) -> None:
        self.counts[operation_name] += 1

    def take(self) -> collections.Counter[str]:
        counts, self.counts = self.counts, collections.Counter()
        return counts


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[AwsClients, Settings, Path]]:
    with LocalAWS(endpoint_delay=0.0, triton=False) as aws:
        models = tmp_path / "models"
        settings = Settings(
            aws_endpoint_url=aws.endpoint_url,
            file_roots=str(models),
            work_dir=str(tmp_path),
            retry_delay_seconds=1,
            poll_interval_seconds=1,
        )
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
        )
        clients = make_clients("us-east-1", settings, session)
        clients.s3.create_bucket(Bucket=BUCKET)
        for i in range(MODELS):
            path = models / f"m{i:03d}" / "model.onnx"
            path.parent.mkdir(parents=True)
            path.write_bytes(b"\x08\x07onnx-%03d" % i)
        yield clients, settings, models


def body(
    models: Path, status: dict[str, Any] | None, generation: int = 1, grace: int | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "cost", "namespace": "ml", "uid": OWNER, "generation": generation},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": BUCKET, "prefix": PREFIX},
            "instanceType": "ml.g5.xlarge",
            "models": [
                {
                    "name": f"m{i:03d}",
                    "source": (models / f"m{i:03d}" / "model.onnx").as_uri(),
                    "platform": "onnxruntime_onnx",
                }
                for i in range(MODELS)
            ],
        },
    }
    if grace is not None:
        doc["spec"]["artifacts"]["gracePeriodSeconds"] = grace
    if status is not None:
        doc["status"] = status
    return doc


def run(clients: AwsClients, settings: Settings, doc: dict[str, Any]) -> Outcome:
    return reconcile(doc, clients, settings)


def converge(
    clients: AwsClients, settings: Settings, models: Path, status: dict[str, Any] | None
) -> dict[str, Any]:
    for _ in range(10):
        outcome = run(clients, settings, body(models, status))
        status = outcome.status.model_dump(by_alias=True, exclude_none=True, mode="json")
        if status.get("phase") == "Ready":
            return status
    raise AssertionError(f"not Ready: {status}")


def archive_calls(counts: collections.Counter[str]) -> dict[str, int]:
    names = ("ListObjectsV2", "HeadObject", "PutObject", "CreateMultipartUpload", "DeleteObject")
    return {name: counts[name] for name in names if counts[name]}


def test_a_steady_pass_lists_the_prefix_once_and_heads_nothing(
    world: tuple[AwsClients, Settings, Path],
) -> None:
    clients, settings, models = world
    wire = Wire(clients)
    status = converge(clients, settings, models, None)
    wire.take()

    run(clients, settings, body(models, status))
    steady = wire.take()
    assert archive_calls(steady) == {"ListObjectsV2": 1}, steady
    assert steady["DescribeEndpoint"] == 1, steady


def test_the_drift_check_is_one_describe_and_one_listing(
    world: tuple[AwsClients, Settings, Path],
) -> None:
    clients, settings, models = world
    status = converge(clients, settings, models, None)
    wire = Wire(clients)
    assert check_drift(body(models, status), clients) is None
    assert wire.take() == {"DescribeEndpoint": 1, "ListObjectsV2": 1}


@pytest.mark.parametrize("grace", [None, 0], ids=["kept-for-grace-period", "deleted-at-once"])
def test_changing_one_model_of_100_uploads_one_and_heads_only_a_key_it_deletes(
    world: tuple[AwsClients, Settings, Path], grace: int | None
) -> None:
    clients, settings, models = world
    wire = Wire(clients)
    status = converge(clients, settings, models, None)
    (models / "m042" / "model.onnx").write_bytes(b"\x08\x07onnx-changed")
    wire.take()

    outcome = run(clients, settings, body(models, status, grace=grace))
    change = wire.take()
    expected = {"ListObjectsV2": 1, "PutObject": 1}
    if grace == 0:  # one ownership read right before deleting the superseded archive
        expected.update(HeadObject=1, DeleteObject=1)
    assert archive_calls(change) == expected, change
    status = outcome.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    # PutObject answered the new key's ETag, recorded in status: the next pass is steady,
    # with no HEAD.
    run(clients, settings, body(models, status, grace=grace))
    assert archive_calls(wire.take()) == {"ListObjectsV2": 1}


def test_changing_one_model_of_a_ready_endpoint_reads_four_things_besides_the_upload(
    world: tuple[AwsClients, Settings, Path],
) -> None:
    clients, settings, models = world
    status = converge(clients, settings, models, None)
    status = converge(clients, settings, models, status)  # Ready, superseded ones removed
    (models / "m042" / "model.onnx").write_bytes(b"\x08\x07onnx-changed")
    wire = Wire(clients)

    outcome = run(clients, settings, body(models, status))

    assert outcome.status.phase == "Ready"
    # The endpoint still serves the config the last Ready pass left: no describes of the
    # model and config, no listing of superseded ones. The new TargetModel is loaded once.
    assert wire.take() == {
        "DescribeEndpoint": 1,
        "ListTags": 1,
        "ListObjectsV2": 1,
        "DescribeScalableTargets": 1,
        "PutObject": 1,
        "InvokeEndpoint": 1,
    }


def test_a_restarted_operator_heads_nothing_it_recorded(
    world: tuple[AwsClients, Settings, Path],
) -> None:
    clients, settings, models = world
    status = converge(clients, settings, models, None)
    status = converge(clients, settings, models, status)  # ETags now recorded for all
    forget_ownership()  # what a new process starts with
    wire = Wire(clients)
    run(clients, settings, body(models, status))
    assert archive_calls(wire.take()) == {"ListObjectsV2": 1}
