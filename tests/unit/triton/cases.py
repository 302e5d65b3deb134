"""Representative models whose rendered configs are kept as golden files."""

from __future__ import annotations

from typing import Any

from mme_operator.api import ModelSpec

# A parameter value that exercises every escape: quotes, backslashes, control characters,
# non-ASCII (two-, three- and four-byte UTF-8) and text that looks like pbtxt syntax.
TRICKY_STRING = 'say "hi" \\ C:\\tmp\\new\n\ttab\r\x00\x7f é 日本 🙂 } parameters { key: "x" <&>'

CASES: dict[str, dict[str, Any]] = {
    # Concurrent model execution (2 copies per GPU) plus dynamic batching with a queue policy.
    "onnx_gpu_batching": {
        "name": "bert-base",
        "source": "s3://training-out/bert/model.onnx",
        "platform": "onnxruntime_onnx",
        "maxBatchSize": 32,
        "inputs": [
            {"name": "input_ids", "dataType": "TYPE_INT64", "dims": [-1]},
            {"name": "attention_mask", "dataType": "TYPE_INT64", "dims": [-1]},
        ],
        "outputs": [{"name": "logits", "dataType": "TYPE_FP32", "dims": [-1, 2]}],
        "instanceGroups": [{"count": 2, "kind": "KIND_GPU", "gpus": [0]}],
        "dynamicBatching": {
            "maxQueueDelayMicroseconds": 100,
            "preferredBatchSize": [8, 16],
            "preserveOrdering": True,
            "priorityLevels": 3,
            "defaultPriorityLevel": 2,
            "defaultQueuePolicy": {
                "timeoutAction": "DELAY",
                "defaultTimeoutMicroseconds": 50000,
                "allowTimeoutOverride": True,
                "maxQueueSize": 128,
            },
        },
    },
    # Python backend on CPU with backend parameters (rendered sorted by key).
    "python_cpu_parameters": {
        "name": "preprocess",
        "source": "file:///models/preprocess/model.py",
        "backend": "python",
        "maxBatchSize": 8,
        "inputs": [{"name": "TEXT", "dataType": "TYPE_STRING", "dims": [1]}],
        "outputs": [{"name": "TOKENS", "dataType": "TYPE_INT32", "dims": [128]}],
        "instanceGroups": [{"count": 4, "kind": "KIND_CPU"}],
        "parameters": {
            "tokenizer": "bert-base-uncased",
            "EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz",
            "max_length": "128",
        },
    },
    # The least a model can say: Triton fills in inputs and outputs from the plan itself.
    "tensorrt_minimal": {
        "name": "resnet50_trt",
        "source": "s3://training-out/resnet50/model.plan",
        "platform": "tensorrt_plan",
    },
    # vLLM backend: the engine arguments live in model.json, parameters tune the backend.
    "vllm_parameters": {
        "name": "qwen-0_5b",
        "source": "s3://training-out/qwen/model.json",
        "backend": "vllm",
        "instanceGroups": [{"count": 1, "kind": "KIND_AUTO"}],
        "parameters": {
            "REPORT_CUSTOM_METRICS": "true",
            "prompt_template": TRICKY_STRING,
            "json_args": '{"max_tokens": 64, "stop": ["\\n\\n"]}',
            "": "empty key",
            "empty_value": "",
        },
    },
}


def case_model(case: str) -> ModelSpec:
    """The ModelSpec of a golden case."""
    return ModelSpec.model_validate(CASES[case])
