"""render_model_config: every spec renders to text that Triton's schema reads back as the spec."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from google.protobuf import text_encoding, text_format
from mme_operator.api import DataType, ModelSpec, Platform
from mme_operator.triton import (
    TritonConfigError,
    check_model_config,
    default_model_filename,
    expected_model_config,
    parse_model_config,
    pbtxt_string,
    render_model_config,
)
from mme_operator.triton.schema import model_config_pb2

from tests.unit.triton.cases import TRICKY_STRING

STRINGS = [
    "",
    "plain",
    'double "quotes"',
    "single 'quotes'",
    "back\\slash and \\n as two characters",
    "line one\nline two\r\n",
    "\t\x00\x01\x1f\x7f control characters",
    "café ünïcödé",
    "日本語のテキスト",
    "emoji 🙂🚀 outside the BMP",
    "\\\"\\'\\",
    "\\",
    '"',
    "}{ ] [ # not a comment",
    TRICKY_STRING,
]


def model(**fields: Any) -> ModelSpec:
    base: dict[str, Any] = {"name": "m", "source": "s3://bucket/m/model.onnx"}
    if "backend" not in fields:
        base["platform"] = "onnxruntime_onnx"
    return ModelSpec.model_validate({**base, **fields})


@pytest.mark.parametrize("value", STRINGS)
def test_parameter_value_round_trips_exactly(value: str) -> None:
    text = render_model_config(model(backend="python", parameters={"k": value, value: "v"}))
    params = parse_model_config(text).parameters
    assert params["k"].string_value == value
    assert params[value].string_value == "v"


@pytest.mark.parametrize("value", STRINGS)
def test_string_escaping_is_what_protobuf_itself_writes(value: str) -> None:
    # protobuf's own escaper (text_format with as_utf8=False) is the reference spelling.
    assert pbtxt_string(value) == '"' + text_encoding.CEscape(value.encode(), as_utf8=False) + '"'


@pytest.mark.parametrize("value", STRINGS)
def test_escaped_string_is_single_line_ascii(value: str) -> None:
    escaped = pbtxt_string(value)
    assert escaped.isascii() and "\n" not in escaped and "\r" not in escaped


def test_text_that_cannot_be_utf8_is_refused() -> None:
    # The spec's own validation refuses such a string first; rendering must refuse it too.
    spec = model()
    spec.parameters = {"k": "lone surrogate \ud800"}
    with pytest.raises(TritonConfigError, match="not valid Unicode"):
        render_model_config(spec)


def test_jinja_does_not_html_escape() -> None:
    text = render_model_config(model(parameters={"html": "<b>&amp;</b>"}))
    assert 'string_value: "<b>&amp;</b>"' in text


def test_parameters_render_sorted_so_yaml_order_does_not_change_the_archive() -> None:
    one = render_model_config(model(parameters={"b": "2", "a": "1", "B": "3"}))
    other = render_model_config(model(parameters={"B": "3", "a": "1", "b": "2"}))
    assert one == other
    assert one.index('key: "B"') < one.index('key: "a"') < one.index('key: "b"')


def test_a_config_that_says_something_else_than_the_spec_is_refused() -> None:
    four = model(instanceGroups=[{"count": 4, "kind": "KIND_GPU"}])
    two = model(instanceGroups=[{"count": 2, "kind": "KIND_GPU"}])
    with pytest.raises(TritonConfigError, match=r"differs from its spec(.|\n)*count: 4"):
        check_model_config(render_model_config(two), four)


def test_an_empty_dynamic_batching_block_still_counts_as_enabled() -> None:
    batched = model(maxBatchSize=4, dynamicBatching={})
    assert "dynamic_batching {" in render_model_config(batched)
    with pytest.raises(TritonConfigError, match="differs from its spec"):
        check_model_config(render_model_config(model(maxBatchSize=4)), batched)


def test_text_that_does_not_parse_is_refused() -> None:
    with pytest.raises(TritonConfigError, match="does not parse"):
        parse_model_config('name: "m"\nmax_batch_size: "eight"\n')
    with pytest.raises(TritonConfigError, match="does not parse"):
        parse_model_config('name: "m"\ninstance_group [ { kind: KIND_TPU } ]\n')


def test_default_model_filename_is_omitted_from_the_config() -> None:
    assert "default_model_filename" not in render_model_config(model())


@pytest.mark.parametrize(
    ("fields", "filename"),
    [
        ({"platform": "onnxruntime_onnx"}, "model.onnx"),
        ({"backend": "onnxruntime"}, "model.onnx"),
        ({"platform": "tensorrt_plan"}, "model.plan"),
        ({"backend": "tensorrt"}, "model.plan"),
        ({"platform": "pytorch_libtorch"}, "model.pt"),
        ({"backend": "pytorch"}, "model.pt"),
        ({"platform": "tensorflow_savedmodel"}, "model.savedmodel"),
        ({"platform": "tensorflow_graphdef"}, "model.graphdef"),
        ({"backend": "python"}, "model.py"),
        ({"backend": "vllm"}, "model.json"),
        ({"backend": "openvino"}, "model.xml"),
        ({"backend": "my_custom_backend"}, "model"),
    ],
)
def test_default_model_filename(fields: dict[str, str], filename: str) -> None:
    spec = ModelSpec.model_validate({"name": "m", "source": "s3://b/k", **fields})
    assert default_model_filename(spec) == filename


def generated_models() -> list[ModelSpec]:
    """Many valid combinations of the fields the template renders."""
    kinds: list[dict[str, Any]] = [{"platform": p.value} for p in Platform] + [
        {"backend": b} for b in ("python", "vllm", "onnxruntime", "custom_1")
    ]
    tensors: list[list[dict[str, Any]] | None] = [
        None,
        [{"name": "x", "dataType": "TYPE_FP32", "dims": []}],
        [
            {"name": f"t{i}", "dataType": dt.value, "dims": [-1] * (i % 3) + [i + 1]}
            for i, dt in enumerate(DataType)
        ],
    ]
    groups: list[list[dict[str, Any]] | None] = [
        None,
        [{}],
        [{"count": 3, "kind": "KIND_GPU", "gpus": [0, 2]}, {"count": 1, "kind": "KIND_CPU"}],
        [{"count": 64, "kind": "KIND_AUTO"}],
    ]
    batchings: list[dict[str, Any] | None] = [
        None,
        {},
        {"maxQueueDelayMicroseconds": 0, "preferredBatchSize": [1]},
        {
            "maxQueueDelayMicroseconds": 10_000_000,
            "preserveOrdering": True,
            "priorityLevels": 0,
            "defaultPriorityLevel": 0,
            "defaultQueuePolicy": {},
        },
        {"priorityLevels": 1000, "defaultQueuePolicy": {"timeoutAction": "DELAY"}},
    ]
    parameter_sets: list[dict[str, str] | None] = [None, {}, {s: s for s in STRINGS[:6]}]
    models = []
    combinations = itertools.product((0, 1, 65536), tensors, groups, batchings, parameter_sets)
    for i, (batch, inputs, group, batching, params) in enumerate(combinations):
        if batching is not None and batch == 0:
            continue  # the API refuses dynamic batching without batching
        # Platforms and backends take turns rather than multiplying the count: the template
        # treats them independently of the other fields.
        kind = kinds[i % len(kinds)]
        models.append(
            ModelSpec.model_validate(
                {
                    "name": "model-1",
                    "source": "s3://b/k",
                    **kind,
                    "maxBatchSize": batch,
                    "inputs": inputs,
                    "outputs": inputs,
                    "instanceGroups": group,
                    "dynamicBatching": batching,
                    "parameters": params,
                }
            )
        )
    return models


def test_generated_specs_render_and_read_back_as_themselves() -> None:
    models = generated_models()
    assert len(models) > 300
    for spec in models:
        text = render_model_config(spec)
        parsed = parse_model_config(text)
        assert parsed == expected_model_config(spec), text
        # Reprinting the parsed proto and parsing again is a fixed point.
        reparsed = model_config_pb2.ModelConfig()
        text_format.Parse(text_format.MessageToString(parsed), reparsed)
        assert reparsed == parsed
