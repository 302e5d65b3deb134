"""InvokeEndpoint through a real tritonserver (CPU), when nvidia-pytriton is installed."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from mme_operator.local import LocalAWS, TritonServer

from tests.local.conftest import CONFIG_PBTXT, DELAY, MODEL_PY, Stack, model_archive

pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(
        not TritonServer.available(), reason="tritonserver (nvidia-pytriton) not installed"
    ),
]


def test_invoke_runs_a_real_inference() -> None:
    # Rendered for a GPU instance; the local CPU server still loads it.
    gpu_config = CONFIG_PBTXT.replace("KIND_CPU", "KIND_GPU")
    archive = model_archive({"m/config.pbtxt": gpu_config, "m/1/model.py": MODEL_PY})
    with LocalAWS(endpoint_delay=DELAY, triton=True) as aws:
        stack = Stack(aws)
        endpoint = stack.endpoint(stack.config(stack.model()))
        stack.upload("double-v1.tar.gz", archive)
        runtime = aws.client("sagemaker-runtime")
        tensor = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}

        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            TargetModel="double-v1.tar.gz",
            ContentType="application/json",
            Body=json.dumps({"inputs": [tensor]}).encode(),
        )

        answer = json.loads(response["Body"].read())
        assert answer["outputs"][0]["data"] == [2.0, 4.0, 6.0]
        assert answer["outputs"][0]["shape"] == [1, 3]

        # Triton's own refusal comes back as a ModelError carrying its status.
        with pytest.raises(ClientError) as excinfo:
            runtime.invoke_endpoint(
                EndpointName=endpoint,
                TargetModel="double-v1.tar.gz",
                ContentType="application/json",
                Body=json.dumps({"inputs": [{**tensor, "name": "WRONG"}]}).encode(),
            )
        assert excinfo.value.response["Error"]["Code"] == "ModelError"
        assert excinfo.value.response["OriginalStatusCode"] == 400  # type: ignore[typeddict-item]
