"""How a load-check invocation's end is judged: Triton's messages, as MME's container sends
them (400 and ``{"error": ...}`` for both a failed load and a refused request)."""

from __future__ import annotations

import json

import botocore.exceptions
from mme_operator.reconcile.loading import LoadVerdict, container_message, judge_invocation


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
