"""One pass asks SageMaker each thing once: under heavy throttling every call saved counts.

The gateway of a pass answers a describe or a tags read asked twice from its first answer
(and forgets it on a write); a deletion pass used to describe the endpoint and read the tags
of each resource twice, once to observe and once more before deleting it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS
from mme_operator.reconcile import finalize, reconcile
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.settings import Settings

BODY: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "frugal", "namespace": "default", "uid": "uid-frugal", "generation": 1},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "frugal-artifacts"},
        "instanceType": "ml.g5.xlarge",
        "models": [
            {"name": "bert", "source": "s3://frugal-src/bert.onnx", "platform": "onnxruntime_onnx"}
        ],
    },
}


@pytest.fixture
def aws() -> Iterator[tuple[LocalAWS, AwsClients, Settings]]:
    with LocalAWS(endpoint_delay=0.05, triton=False) as local:
        settings = Settings(
            aws_endpoint_url=local.endpoint_url, retry_delay_seconds=0.1, poll_interval_seconds=0.1
        )
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
        )
        clients = make_clients("us-east-1", settings, session)
        clients.s3.create_bucket(Bucket="frugal-artifacts")
        clients.s3.create_bucket(Bucket="frugal-src")
        clients.s3.put_object(Bucket="frugal-src", Key="bert.onnx", Body=b"\x08\x07onnx")
        yield local, clients, settings


def test_a_deletion_pass_reads_each_thing_once(
    aws: tuple[LocalAWS, AwsClients, Settings],
) -> None:
    local, clients, settings = aws
    body = dict(BODY)
    for _ in range(50):
        outcome = reconcile(body, clients, settings)
        body["status"] = outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        if outcome.status.phase == "Ready":
            break
        time.sleep(0.1)  # the endpoint is Creating
    assert body["status"]["phase"] == "Ready"

    local.reset_calls()
    deletion = finalize(body, clients, settings)

    assert not deletion.done  # the endpoint is Deleting; the next pass removes the rest
    calls = local.calls
    assert calls["DescribeEndpoint"] == 1
    assert calls["DeleteEndpoint"] == 1
    # One tags read per resource: the endpoint, its config and its model.
    assert calls["ListTags"] == 3


def test_a_first_pass_that_must_retry_says_so_in_a_condition(
    aws: tuple[LocalAWS, AwsClients, Settings],
) -> None:
    local, _, settings = aws
    local.faults.throttle(100, operations="DescribeEndpoint")
    few = settings.model_copy(update={"aws_max_attempts": 1})
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
    )

    outcome = reconcile(dict(BODY), make_clients("us-east-1", few, session), few)

    assert outcome.retry_after == settings.retry_delay_seconds
    assert outcome.status.phase == "Pending"
    ready = next(c for c in outcome.status.conditions or [] if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "Retrying")
    assert "ThrottlingException" in ready.message


def test_a_throttled_call_is_tried_again_after_botocore_gives_up(
    aws: tuple[LocalAWS, AwsClients, Settings],
) -> None:
    local, _, settings = aws
    # Few botocore attempts stand for its retry quota being empty: it gives up at once.
    once = settings.model_copy(update={"aws_max_attempts": 1})
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
    )
    clients = make_clients("us-east-1", once, session)
    local.faults.throttle(100, operations="DescribeEndpoint", count=3)
    local.reset_calls()

    patient = dataclasses.replace(clients, throttle_attempts=5).gateway()
    assert patient.describe_endpoint("nowhere") is None  # 3 throttled, then an answer
    assert local.calls["DescribeEndpoint"] == 4

    local.faults.throttle(100, operations="DescribeEndpoint", count=2)
    with pytest.raises(botocore.exceptions.ClientError):
        clients.gateway().describe_endpoint("nowhere")  # botocore's 2 tries, no more
