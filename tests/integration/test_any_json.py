"""Every handler path survives any JSON in ``spec`` and ``status`` (seeded, generated bodies).

The API server guarantees ``metadata`` (name, uid, generation); ``spec`` and ``status`` are
whatever a client wrote, and a cluster without our CRD's schema (or the emulator) hands over
lists, strings, nulls and wrong types. Create / update / resume (``reconcile``), the drift
timer (``check_drift``), deletion (``finalize``) and the region the clients are made for must
each return an answer, never raise.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.utils import validate_region_name
from mme_operator.handlers import _region
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS
from mme_operator.reconcile import check_drift, finalize, reconcile
from mme_operator.reconcile.engine import Deletion, Outcome
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.settings import Settings

SEED = 1105
BODIES = 400

VALID_SPEC: dict[str, Any] = {
    "region": "us-east-1",
    "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
    "artifacts": {"bucket": "fuzz-artifacts", "prefix": "mme/fuzz/"},
    "instanceType": "ml.g5.xlarge",
    "models": [
        {"name": "bert", "source": "s3://fuzz-src/bert.onnx", "platform": "onnxruntime_onnx"}
    ],
}
VALID_STATUS: dict[str, Any] = {
    "phase": "Ready",
    "endpointName": "fuzz-endpoint",
    "endpointConfigName": "fuzz-config",
    "models": [{"name": "bert", "state": "Available", "s3Key": "mme/fuzz/bert.tar.gz"}],
    "conditions": [{"type": "Ready", "status": "True"}],
}


def any_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: scalars of every type, lists and objects, a few levels deep."""
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 2**63, rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1e300, 1e-9])
    if kind == "str":
        return rng.choice(["", "x", "us-east-1", "Ready", "s3://", "ml.g5.xlarge", "\u00e9" * 3])
    if kind == "list":
        return [any_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["region", "models", "artifacts", "name", "phase", "bucket", "source", "x"]
    return {rng.choice(keys): any_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def mutate(rng: random.Random, value: Any) -> Any:
    """``value`` with one nested field (or the whole) replaced by random JSON."""
    value = copy.deepcopy(value)
    if not isinstance(value, (dict, list)) or not value or rng.random() < 0.2:
        return any_json(rng)
    key = rng.choice(list(value)) if isinstance(value, dict) else rng.randrange(len(value))
    value[key] = mutate(rng, value[key])
    return value


def bodies() -> Iterator[dict[str, Any]]:
    rng = random.Random(SEED)
    for i in range(BODIES):
        body: dict[str, Any] = {
            "apiVersion": "mme-operator.io/v1alpha1",
            "kind": "ModelEndpoint",
            "metadata": {"name": f"fuzz-{i}", "namespace": "default", "uid": f"uid-{i}"},
        }
        body["metadata"]["generation"] = rng.randint(1, 5)
        choice = rng.random()
        if choice < 0.9:
            body["spec"] = mutate(rng, VALID_SPEC) if choice < 0.6 else any_json(rng)
        if rng.random() < 0.7:
            body["status"] = mutate(rng, VALID_STATUS) if rng.random() < 0.7 else any_json(rng)
        yield body


@pytest.fixture(scope="module")
def clients() -> Iterator[AwsClients]:
    with LocalAWS(endpoint_delay=0.1, triton=False) as aws:
        settings = Settings(aws_endpoint_url=aws.endpoint_url)
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
        )
        made = make_clients("us-east-1", settings, session)
        made.s3.create_bucket(Bucket="fuzz-artifacts")
        made.s3.create_bucket(Bucket="fuzz-src")
        made.s3.put_object(Bucket="fuzz-src", Key="bert.onnx", Body=b"\x08\x07onnx")
        yield made


def test_every_handler_path_answers_any_json(clients: AwsClients) -> None:
    settings = Settings(retry_delay_seconds=1, poll_interval_seconds=1)
    outcomes = 0
    for body in bodies():
        validate_region_name(_region(body))  # what client creation would raise on
        outcome = reconcile(body, clients, settings)
        assert isinstance(outcome, Outcome)
        assert outcome.status.conditions, body  # always something to show the user
        drift = check_drift(body, clients)
        assert drift is None or isinstance(drift, str)
        deletion = finalize(body, clients, settings)
        assert isinstance(deletion, Deletion)
        outcomes += 1
    assert outcomes == BODIES
