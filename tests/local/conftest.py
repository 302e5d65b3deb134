"""Fixtures for the local AWS: one server per module, faults and counters reset per test."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from mme_operator.local import LocalAWS

TRITON_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-mme"
DELAY = 0.3

CONFIG_PBTXT = """\
backend: "python"
max_batch_size: 8
input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }]
output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }]
instance_group [{ kind: KIND_CPU count: 2 }]
dynamic_batching { max_queue_delay_microseconds: 100 preferred_batch_size: [ 4 ] }
"""

MODEL_PY = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            out = pb_utils.Tensor("OUTPUT0", (x * 2).astype(np.float32))
            responses.append(pb_utils.InferenceResponse([out]))
        return responses
"""


def model_archive(files: Mapping[str, str | bytes] | None = None) -> bytes:
    """A tar.gz of ``files`` (path -> content); by default a good Triton Python model ``m``."""
    if files is None:
        files = {"m/config.pbtxt": CONFIG_PBTXT, "m/1/model.py": MODEL_PY}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unique(prefix: str) -> str:
    """A resource name no other test uses (moto's S3 is shared by the whole process)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def put_ok_alarm(cloudwatch: Any) -> str:
    """A CloudWatch alarm on an endpoint's 5xx errors, set to OK: a deployment's auto-rollback
    alarm, which a test then sets to ALARM with ``set_alarm_state``."""
    name = unique("errors")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="quiet")
    return name


class Stack:
    """Builds the SageMaker resources of one MME endpoint through boto3, as the operator would."""

    def __init__(self, aws: LocalAWS) -> None:
        self.aws = aws
        self.sm = aws.client("sagemaker")
        self.s3 = aws.client("s3")
        self.bucket = unique("models")
        self.s3.create_bucket(Bucket=self.bucket)

    def model(
        self,
        image: str = TRITON_IMAGE,
        bucket: str | None = None,
        mode: str = "MultiModel",
        *,
        name: str | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> str:
        name = name or unique("model")
        self.sm.create_model(
            ModelName=name,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": image,
                "ModelDataUrl": f"s3://{bucket or self.bucket}/mme/",
                "Mode": mode,
            },
            **({"Tags": tags} if tags is not None else {}),
        )
        return name

    def config(self, model: str, instance_type: str = "ml.g5.xlarge", count: int = 1) -> str:
        name = unique("config")
        self.sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InstanceType": instance_type,
                    "InitialInstanceCount": count,
                }
            ],
        )
        return name

    def endpoint(self, config: str, wait: bool = True) -> str:
        name = unique("ep")
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        if wait:
            self.wait(name, "InService")
        return name

    def wait(self, endpoint: str, *statuses: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll DescribeEndpoint until the status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sm.describe_endpoint(EndpointName=endpoint)
            if described["EndpointStatus"] in statuses:
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"{endpoint} is {described['EndpointStatus']}, not {statuses}")
            time.sleep(0.05)

    def upload(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"mme/{key}", Body=data)


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAWS]:
    # No real tritonserver: InvokeEndpoint answers a description of the loaded model.
    with LocalAWS(endpoint_delay=DELAY, triton=False) as aws:
        yield aws


@pytest.fixture
def aws(local_aws: LocalAWS) -> Iterator[LocalAWS]:
    local_aws.faults.reset()
    local_aws.reset_calls()
    yield local_aws
    local_aws.faults.reset()


@pytest.fixture
def stack(aws: LocalAWS) -> Stack:
    return Stack(aws)
