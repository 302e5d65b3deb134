"""Rendered config.pbtxt files, byte for byte, against the golden files beside this test.

After an intended change to the template, rewrite the goldens with
``UPDATE_GOLDEN=1 pytest tests/unit/triton`` and review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mme_operator.triton import parse_model_config, render_model_config
from mme_operator.triton.schema import model_config_pb2

from tests.unit.triton.cases import CASES, TRICKY_STRING, case_model

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def golden_path(case: str) -> Path:
    return GOLDEN_DIR / f"{case}.pbtxt"


def read_golden(case: str) -> str:
    # Bytes, not text mode: the comparison must see a stray \r\n.
    return golden_path(case).read_bytes().decode("utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_config_matches_golden_file(case: str) -> None:
    rendered = render_model_config(case_model(case))
    if UPDATE:
        golden_path(case).write_text(rendered, encoding="utf-8", newline="")
    assert rendered == read_golden(case)


def test_every_golden_file_has_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.pbtxt")) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_file_is_plain_ascii_ending_in_one_newline(case: str) -> None:
    data = golden_path(case).read_bytes()
    assert data.isascii()
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")


def test_onnx_golden_runs_two_copies_per_gpu_with_batching() -> None:
    config = parse_model_config(read_golden("onnx_gpu_batching"))
    assert config.name == "bert-base"
    assert config.platform == "onnxruntime_onnx"
    assert config.backend == ""
    assert config.max_batch_size == 32
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("input_ids", model_config_pb2.TYPE_INT64, [-1]),
        ("attention_mask", model_config_pb2.TYPE_INT64, [-1]),
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        ("logits", model_config_pb2.TYPE_FP32, [-1, 2])
    ]
    [group] = config.instance_group
    assert (group.count, group.kind, list(group.gpus)) == (
        2,
        model_config_pb2.ModelInstanceGroup.KIND_GPU,
        [0],
    )
    batching = config.dynamic_batching
    assert list(batching.preferred_batch_size) == [8, 16]
    assert batching.max_queue_delay_microseconds == 100
    assert batching.preserve_ordering is True
    assert (batching.priority_levels, batching.default_priority_level) == (3, 2)
    policy = batching.default_queue_policy
    assert policy.timeout_action == model_config_pb2.ModelQueuePolicy.DELAY
    assert policy.default_timeout_microseconds == 50000
    assert policy.allow_timeout_override is True
    assert policy.max_queue_size == 128
    assert not config.default_model_filename


def test_python_golden_runs_on_cpu_with_parameters() -> None:
    config = parse_model_config(read_golden("python_cpu_parameters"))
    assert (config.backend, config.platform) == ("python", "")
    [group] = config.instance_group
    assert (group.count, group.kind) == (4, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    assert list(group.gpus) == []
    assert {k: v.string_value for k, v in config.parameters.items()} == {
        "tokenizer": "bert-base-uncased",
        "EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env.tar.gz",
        "max_length": "128",
    }
    assert config.input[0].data_type == model_config_pb2.TYPE_STRING
    assert not config.HasField("dynamic_batching")


def test_tensorrt_golden_is_minimal_without_batching() -> None:
    config = parse_model_config(read_golden("tensorrt_minimal"))
    assert (config.name, config.platform, config.max_batch_size) == (
        "resnet50_trt",
        "tensorrt_plan",
        0,
    )
    assert "max_batch_size: 0" in read_golden("tensorrt_minimal")
    assert not config.input and not config.output and not config.instance_group
    assert not config.HasField("dynamic_batching")
    assert not config.parameters


def test_vllm_golden_keeps_tricky_parameter_strings_exactly() -> None:
    config = parse_model_config(read_golden("vllm_parameters"))
    assert config.backend == "vllm"
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params["prompt_template"] == TRICKY_STRING
    assert params["json_args"] == '{"max_tokens": 64, "stop": ["\\n\\n"]}'
    assert params[""] == "empty key"
    assert params["empty_value"] == ""
    assert len(params) == 5
