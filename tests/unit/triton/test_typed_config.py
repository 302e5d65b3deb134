"""The Triton config surface of the spec: a typed subset rendered with Triton's own schema,
a configPbtxt fragment for the rest, and the refusals (decoupled models, a Triton field the
spec does not type) that say what to do instead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from mme_operator.api import ModelSpec, validate_resource
from mme_operator.triton import parse_model_config, render_model_config
from mme_operator.triton.schema import model_config_pb2

from tests.unit.api.documents import GOOD, changed
from tests.unit.api.test_cli import run_cli, write

GOLDEN = Path(__file__).parent / "golden_typed"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
MODELS = Path(__file__).resolve().parents[2] / "models"
Control = model_config_pb2.ModelSequenceBatching.Control

# Every typed Triton field at once (also applied to the real API server in tests/kube).
TYPED: dict[str, Any] = {
    # The typed Triton subset and the configPbtxt fragment.
    "name": "tagger",
    "source": "s3://training-out/tagger/",
    "platform": "onnxruntime_onnx",
    "maxBatchSize": 4,
    "inputs": [
        {
            "name": "tokens",
            "dataType": "TYPE_INT64",
            "dims": [-1],
            "reshape": {"shape": [-1, 1]},
            "optional": False,
            "allowRaggedBatch": True,
        }
    ],
    "instanceGroups": [
        {
            "kind": "KIND_GPU",
            "rateLimiter": {
                "resources": [{"name": "R1", "global": True, "count": 2}],
                "priority": 1,
            },
        }
    ],
    "sequenceBatching": {
        "maxSequenceIdleMicroseconds": 5000000,
        "controlInput": [
            {
                "name": "START",
                "control": [{"kind": "CONTROL_SEQUENCE_START", "int32FalseTrue": [0, 1]}],
            }
        ],
        "direct": {"maxQueueDelayMicroseconds": 100, "minimumSlotUtilization": 0.5},
    },
    "responseCache": {"enable": True},
    "modelWarmup": [
        {
            "name": "zeros",
            "batchSize": 1,
            "inputs": {"tokens": {"dataType": "TYPE_INT64", "dims": [8], "zeroData": True}},
        }
    ],
    "versionPolicy": {"latest": {"numVersions": 1}},
    "optimization": {
        "priority": "PRIORITY_MAX",
        "executionAccelerators": {
            "gpuExecutionAccelerator": [
                {"name": "tensorrt", "parameters": {"precision_mode": "FP16"}}
            ]
        },
        "inputPinnedMemory": {"enable": True},
        "cuda": {"graphs": True},
    },
    "defaultModelFilename": "tagger.onnx",
    "configPbtxt": 'metric_tags { key: "team" value: "nlp" }',
}

SEQUENCE: dict[str, Any] = {
    "name": "stateful",
    "source": "s3://training-out/stateful/model.onnx",
    "platform": "onnxruntime_onnx",
    "maxBatchSize": 8,
    "inputs": [{"name": "INPUT", "dataType": "TYPE_FP32", "dims": [1]}],
    "outputs": [{"name": "OUTPUT", "dataType": "TYPE_FP32", "dims": [1]}],
    "sequenceBatching": {
        "maxSequenceIdleMicroseconds": 5000000,
        "controlInput": [
            {
                "name": "START",
                "control": [{"kind": "CONTROL_SEQUENCE_START", "fp32FalseTrue": [0, 1]}],
            },
            {
                "name": "READY",
                "control": [{"kind": "CONTROL_SEQUENCE_READY", "int32FalseTrue": [0, 1]}],
            },
            {
                "name": "END",
                "control": [{"kind": "CONTROL_SEQUENCE_END", "boolFalseTrue": [False, True]}],
            },
            {
                "name": "CORRID",
                "control": [{"kind": "CONTROL_SEQUENCE_CORRID", "dataType": "TYPE_UINT64"}],
            },
        ],
        "oldest": {
            "maxCandidateSequences": 4,
            "preferredBatchSize": [2, 4],
            "maxQueueDelayMicroseconds": 100,
        },
    },
}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.pbtxt"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    assert text == path.read_bytes().decode("utf-8")


def problems_of(model: dict[str, Any]) -> list[str]:
    doc = changed(GOOD, "spec.models", [model])
    return [str(p) for p in validate_resource(doc)[1]]


def test_a_sequence_batching_onnx_config_keeps_every_control_input() -> None:
    assert problems_of(SEQUENCE) == []
    text = render_model_config(ModelSpec.model_validate(SEQUENCE))
    check_golden("sequence_oldest", text)
    sequence = parse_model_config(text).sequence_batching
    controls = [(c.name, [k.kind for k in c.control]) for c in sequence.control_input]
    assert controls == [
        ("START", [Control.CONTROL_SEQUENCE_START]),
        ("READY", [Control.CONTROL_SEQUENCE_READY]),
        ("END", [Control.CONTROL_SEQUENCE_END]),
        ("CORRID", [Control.CONTROL_SEQUENCE_CORRID]),
    ]
    start, ready, end, corrid = (c.control[0] for c in sequence.control_input)
    assert list(start.fp32_false_true) == [0.0, 1.0]
    assert list(ready.int32_false_true) == [0, 1]
    assert list(end.bool_false_true) == [False, True]
    assert corrid.data_type == model_config_pb2.TYPE_UINT64
    assert sequence.max_sequence_idle_microseconds == 5000000
    assert sequence.WhichOneof("strategy_choice") == "oldest"
    assert list(sequence.oldest.preferred_batch_size) == [2, 4]
    assert not parse_model_config(text).HasField("dynamic_batching")


def test_the_direct_strategy_is_rendered() -> None:
    model = changed(SEQUENCE, "sequenceBatching.oldest", None)
    model["sequenceBatching"].pop("oldest")
    model["sequenceBatching"]["direct"] = {
        "maxQueueDelayMicroseconds": 50,
        "minimumSlotUtilization": 0.5,
    }
    assert problems_of(model) == []
    sequence = parse_model_config(
        render_model_config(ModelSpec.model_validate(model))
    ).sequence_batching
    assert sequence.WhichOneof("strategy_choice") == "direct"
    assert sequence.direct.minimum_slot_utilization == 0.5


def test_every_typed_field_renders_through_the_schema() -> None:
    assert problems_of(TYPED) == []
    text = render_model_config(ModelSpec.model_validate(TYPED))
    check_golden("every_typed_field", text)
    config = parse_model_config(text)
    [tokens] = config.input
    assert (list(tokens.reshape.shape), tokens.allow_ragged_batch) == ([-1, 1], True)
    limiter = config.instance_group[0].rate_limiter
    assert [(r.name, r.__getattribute__("global"), r.count) for r in limiter.resources] == [
        ("R1", True, 2)
    ]
    assert config.response_cache.enable is True
    assert config.model_warmup[0].inputs["tokens"].zero_data is True
    assert config.version_policy.latest.num_versions == 1
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert (accelerator.name, dict(accelerator.parameters)) == (
        "tensorrt",
        {"precision_mode": "FP16"},
    )
    assert config.optimization.priority == model_config_pb2.ModelOptimizationPolicy.PRIORITY_MAX
    assert config.default_model_filename == "tagger.onnx"
    assert dict(config.metric_tags) == {"team": "nlp"}  # from the configPbtxt fragment


def test_a_queue_policy_per_priority_level_is_rendered_in_level_order() -> None:
    model = {
        "name": "ranked",
        "source": "s3://bucket/ranked/",
        "backend": "python",
        "maxBatchSize": 8,
        "dynamicBatching": {
            "priorityLevels": 10,
            "priorityQueuePolicy": {"10": {"maxQueueSize": 3}, "2": {"timeoutAction": "DELAY"}},
        },
    }
    assert problems_of(model) == []
    batching = parse_model_config(
        render_model_config(ModelSpec.model_validate(model))
    ).dynamic_batching
    assert sorted(batching.priority_queue_policy) == [2, 10]
    assert batching.priority_queue_policy[10].max_queue_size == 3
    assert (
        batching.priority_queue_policy[2].timeout_action == model_config_pb2.ModelQueuePolicy.DELAY
    )
    bad = changed(model, "dynamicBatching.priorityQueuePolicy", {"11": {}})
    assert problems_of(bad) == [
        "spec.models[0].dynamicBatching.priorityQueuePolicy: level '11' must be a number from 1 "
        "to priorityLevels (10)"
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"configPbtxt": "model_transaction_policy { decoupled: true }"},
            "spec.models[0].configPbtxt: decoupled models cannot be served",
        ),
        (
            {"configPbtxt": "max_batch_size: 4"},
            "spec.models[0].configPbtxt: max_batch_size has a typed field: set spec.models[0].maxBatchSize",
        ),
        (
            {"configPbtxt": "batch_inputs [ ]"},
            "spec.models[0].configPbtxt: does not parse as a Triton",
        ),
        (
            {"batchInput": [{"kind": "BATCH_ELEMENT_COUNT"}]},
            "spec.models[0].batchInput: batch_input is a Triton config field, not supported as a "
            "field here; use spec.models[0].configPbtxt (a config.pbtxt fragment",
        ),
        (
            {"max_batch_size": 4},
            "spec.models[0].max_batch_size: Triton's max_batch_size is the field 'maxBatchSize' here",
        ),
        ({"maxBatchSze": 4}, "spec.models[0].maxBatchSze: unknown field (check the spelling"),
        (
            {"dynamicBatching": {}},
            "spec.models[0].sequenceBatching: set one scheduler: dynamicBatching or sequenceBatching",
        ),
    ],
)
def test_refusals_say_what_to_do(change: dict[str, Any], problem: str) -> None:
    found = problems_of({**SEQUENCE, **change})
    assert any(p.startswith(problem) for p in found), found


def test_both_sequence_strategies_are_refused() -> None:
    model = changed(SEQUENCE, "sequenceBatching.direct", {})
    assert problems_of(model) == [
        "spec.models[0].sequenceBatching: set one strategy: direct or oldest"
    ]


def test_render_refuses_a_decoupled_model_from_the_spec(tmp_path: Path) -> None:
    model = {**SEQUENCE, "configPbtxt": "model_transaction_policy { decoupled: true }"}
    result = run_cli(
        "render",
        "-f",
        write(tmp_path, changed(GOOD, "spec.models", [model])),
        "-o",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2
    assert "decoupled transaction policy" in result.stderr
    assert not (tmp_path / "out").exists()


def test_render_refuses_a_decoupled_model_from_the_source(tmp_path: Path) -> None:
    source = tmp_path / "src" / "add_sub"
    source.mkdir(parents=True)
    (source / "1").mkdir()
    (source / "1" / "model.py").write_bytes((MODELS / "add_sub" / "1" / "model.py").read_bytes())
    (source / "config.pbtxt").write_text(
        (MODELS / "add_sub" / "config.pbtxt").read_text()
        + "model_transaction_policy { decoupled: true }\n"
    )
    model = {"name": "add_sub", "source": source.as_uri()}
    result = run_cli(
        "render",
        "-f",
        write(tmp_path, changed(GOOD, "spec.models", [model])),
        "-o",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2
    assert "decoupled transaction policy" in result.stderr
    assert not (tmp_path / "out").exists()


def test_render_prints_the_config_the_archive_carries_for_a_source_directory(
    tmp_path: Path,
) -> None:
    model = {"name": "adder", "source": (MODELS / "add_sub").as_uri(), "maxBatchSize": 4}
    out = tmp_path / "out"
    result = run_cli(
        "render", "-f", write(tmp_path, changed(GOOD, "spec.models", [model])), "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    config = parse_model_config((out / "adder" / "config.pbtxt").read_text())
    assert [t.name for t in config.input] == ["INPUT0", "INPUT1"]  # the source's, kept
    assert (config.name, config.backend, config.max_batch_size) == ("adder", "python", 4)
    at = f"note: {tmp_path / 'in.yaml'}: ml/small-llms: spec.models[0]"
    assert result.stderr.splitlines() == [
        f"{at}: set from the spec over the source's config.pbtxt: "
        'name: "add_sub" -> "adder" (from the spec)',
        f"{at}: set from the spec over the source's config.pbtxt: "
        "max_batch_size: added 4 (from the spec)",
    ]
