"""The installed console script, run by its path as cron, an IDE or systemd would: no venv on PATH.

The Python backend of the local tritonserver must find this environment's numpy even
then; the answers checked are the models' real outputs, not the echo fallback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, TritonServer

from tests.local.conftest import CONFIG_PBTXT, MODEL_PY, ROLE, TRITON_IMAGE, model_archive

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "mme-operator"

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(
        not TritonServer.available(), reason="tritonserver (nvidia-pytriton) not installed"
    ),
    pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason=f"{CONSOLE_SCRIPT} not installed"),
]


def bare_environment() -> dict[str, str]:
    """What ``env -i PATH=/usr/bin:/bin HOME=$HOME`` leaves, plus the tree under test.

    PYTHONPATH only points the script at this checkout's package (the same code an
    editable install runs); the tritonserver's embedded Python ignores it.
    """
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO / "operator"),
    }


def test_demo_answers_with_real_inference_without_the_venv_on_path() -> None:
    finished = subprocess.run(
        [str(CONSOLE_SCRIPT), "demo"],
        env=bare_environment(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "answered by a real tritonserver" in finished.stdout
    answer = json.loads(finished.stdout.split("running the model):\n", 1)[1].splitlines()[0])
    outputs = {output["name"]: output["data"] for output in answer["outputs"]}
    assert outputs["OUTPUT0"] == [11.0, 22.0, 33.0, 44.0]
    assert outputs["OUTPUT1"] == [-9.0, -18.0, -27.0, -36.0]


@pytest.fixture
def local_aws_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "local-aws", "--port", "0", "--endpoint-delay", "0.2"],
        env=bare_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("export "):
                key, value = line.removeprefix("export ").strip().split("=", 1)
                exports[key] = value
            if line.startswith("# serving"):
                break
        assert "AWS_ENDPOINT_URL" in exports, f"local-aws did not start (exit {process.poll()})"
        yield process, exports["AWS_ENDPOINT_URL"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_local_aws_serves_a_real_inference_without_the_venv_on_path(
    local_aws_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = local_aws_process
    options = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": DUMMY_ACCESS_KEY,
        "aws_secret_access_key": DUMMY_SECRET_KEY,
        "config": Config(s3={"addressing_style": "path"}, read_timeout=120),
    }
    s3 = boto3.client("s3", **options)
    sagemaker = boto3.client("sagemaker", **options)
    runtime = boto3.client("sagemaker-runtime", **options)
    s3.create_bucket(Bucket="models")
    archive = model_archive({"m/config.pbtxt": CONFIG_PBTXT, "m/1/model.py": MODEL_PY})
    s3.put_object(Bucket="models", Key="mme/double.tar.gz", Body=archive)
    sagemaker.create_model(
        ModelName="double",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": TRITON_IMAGE,
            "ModelDataUrl": "s3://models/mme/",
            "Mode": "MultiModel",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="double",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "double",
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="double", EndpointConfigName="double")
    deadline = time.monotonic() + 10
    while sagemaker.describe_endpoint(EndpointName="double")["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline, "the endpoint did not come InService"
        time.sleep(0.1)
    tensor = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}

    response = runtime.invoke_endpoint(
        EndpointName="double",
        TargetModel="double.tar.gz",
        ContentType="application/json",
        Body=json.dumps({"inputs": [tensor]}).encode(),
    )

    answer = json.loads(response["Body"].read())
    assert answer["outputs"][0]["data"] == [2.0, 4.0, 6.0]
    assert process.poll() is None
