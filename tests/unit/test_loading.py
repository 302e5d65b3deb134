"""How a load-check invocation's end is judged: Triton's messages, as MME's container sends
them (400 and ``{"error": ...}`` for both a failed load and a refused request)."""

from __future__ import annotations

import json

import botocore.exceptions
from mme_operator.api import ModelSpec
from mme_operator.reconcile.loading import (
    LoadVerdict,
    config_inputs,
    container_message,
    inputs_from_archive,
    judge_invocation,
    probe_request,
    spec_inputs,
    zeros_request,
)
from mme_operator.triton import parse_model_config

SOURCE_CONFIG = """
name: "tokenize"
backend: "python"
max_batch_size: 8
input [
  { name: "TEXT" data_type: TYPE_STRING dims: [ -1 ] },
  { name: "IDS" data_type: TYPE_INT64 dims: [ 2, -1 ] },
  { name: "MASK" data_type: TYPE_BOOL dims: [ 3 ] },
  { name: "HINT" data_type: TYPE_FP32 dims: [ 1 ] optional: true }
]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
"""


def test_a_warm_up_request_is_generated_from_a_parsed_config_pbtxt() -> None:
    request = zeros_request(config_inputs(parse_model_config(SOURCE_CONFIG)))
    assert request == {
        "inputs": [
            {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["0"]},
            {"name": "IDS", "shape": [1, 2, 1], "datatype": "INT64", "data": [0, 0]},
            {"name": "MASK", "shape": [1, 3], "datatype": "BOOL", "data": [False] * 3},
        ]
    }  # HINT is optional: left out


def test_a_config_without_batching_gets_no_batch_dimension() -> None:
    config = parse_model_config(
        'backend: "python" input [{ name: "X" data_type: TYPE_FP16 dims: [ 4 ] }]'
    )
    assert zeros_request(config_inputs(config)) == {
        "inputs": [{"name": "X", "shape": [4], "datatype": "FP16", "data": [0] * 4}]
    }


def test_the_spec_and_the_config_declaring_the_same_inputs_give_the_same_request() -> None:
    model = ModelSpec.model_validate(
        {
            "name": "tokenize",
            "source": "s3://b/tokenize/",
            "backend": "python",
            "maxBatchSize": 8,
            "inputs": [
                {"name": "TEXT", "dataType": "TYPE_STRING", "dims": [-1]},
                {"name": "IDS", "dataType": "TYPE_INT64", "dims": [2, -1]},
                {"name": "MASK", "dataType": "TYPE_BOOL", "dims": [3]},
                {"name": "HINT", "dataType": "TYPE_FP32", "dims": [1], "optional": True},
            ],
        }
    )
    parsed = config_inputs(parse_model_config(SOURCE_CONFIG))
    assert spec_inputs(model) == parsed
    assert probe_request(model, warm_up=True) == probe_request(model, warm_up=True, inputs=parsed)
    assert not inputs_from_archive(model, warm_up=True)  # the spec's inputs: no S3 read


def test_only_a_warm_up_of_a_model_without_spec_inputs_reads_the_archive() -> None:
    by_source = ModelSpec.model_validate({"name": "add-sub", "source": "s3://b/add_sub/"})
    assert inputs_from_archive(by_source, warm_up=True)
    assert not inputs_from_archive(by_source, warm_up=False)
    assert json.loads(probe_request(by_source, warm_up=False)) == {"inputs": []}


def model_error(status: int, message: str) -> botocore.exceptions.ClientError:
    body = json.dumps({"error": message})
    response = {
        "Error": {
            "Code": "ModelError",
            "Message": f'Received client error ({status}) from primary with message "{body}".',
        },
        "OriginalStatusCode": status,
        "OriginalMessage": body,
    }
    return botocore.exceptions.ClientError(response, "InvokeEndpoint")  # type: ignore[arg-type]


def test_triton_load_errors_are_load_failures_and_keep_triton_s_message() -> None:
    for message in (
        "load failed for model 'm': version 1 is at UNAVAILABLE state: Internal: TypeError: x",
        "failed to load 'm', failed to poll from model repository",
    ):
        outcome = judge_invocation(model_error(400, message))
        assert (outcome.verdict, outcome.message) == (LoadVerdict.LOAD_FAILED, message)


def test_answers_of_a_loaded_model_count_as_loaded() -> None:
    for message in (
        "[request id: <id_unknown>] expected 1 inputs but got 0 inputs for model 'm'.",
        "unexpected inference input 'X' for model 'm'",
        "Failed to process the request(s) for model 'm_0_1', message: ValueError: no",
    ):
        assert judge_invocation(model_error(400, message)).verdict is LoadVerdict.LOADED
    assert judge_invocation(None).verdict is LoadVerdict.LOADED


def test_out_of_memory_throttling_and_not_ready_are_not_known_yet() -> None:
    oom = model_error(507, "load failed for model 'm': CUDA out of memory")
    throttled = botocore.exceptions.ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "InvokeEndpoint"
    )
    loading = botocore.exceptions.ClientError(
        {"Error": {"Code": "ModelNotReadyException", "Message": "still loading"}},
        "InvokeEndpoint",
    )
    for exc in (
        oom,
        throttled,
        loading,
        botocore.exceptions.EndpointConnectionError(endpoint_url="x"),
    ):
        assert judge_invocation(exc).verdict is LoadVerdict.UNKNOWN


def test_the_container_message_is_unwrapped_from_triton_s_json() -> None:
    assert container_message(model_error(400, "why")) == "why"
    plain = botocore.exceptions.ClientError(
        {"Error": {"Code": "ModelError", "Message": "m"}, "OriginalMessage": "not json"},  # type: ignore[typeddict-unknown-key]
        "InvokeEndpoint",
    )
    assert container_message(plain) == "not json"
