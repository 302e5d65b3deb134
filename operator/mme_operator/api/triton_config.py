"""Rules of the spec's Triton config surface that one field's schema cannot express.

The typed subset (sequence batching, warm-up, version policy, ...) mirrors Triton's
``model_config.proto``; what it does not type goes in ``configPbtxt``, a ``config.pbtxt``
fragment checked here with Triton's schema. Each rule returns ``(path, message)`` pairs
that :mod:`mme_operator.api.validation` turns into problems.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from google.protobuf import text_format

from mme_operator.api.spec import ModelSpec
from mme_operator.api.triton_schema import model_config_pb2, triton_field_names

FRAGMENT_FIELD = "configPbtxt"
DECOUPLED_MESSAGE = (
    "decoupled models cannot be served: a multi-model endpoint's invoke path refuses models "
    "with a decoupled transaction policy (\"HTTP end point doesn't support models with "
    'decoupled transaction policy"); serve it from a single-model endpoint'
)

# Top-level ModelConfig fields that have a typed spec field: the fragment may not set them,
# so that every field has one place and the typed field's checks always apply.
TYPED_FIELDS: dict[str, str] = {
    "name": "name",
    "platform": "platform",
    "backend": "backend",
    "max_batch_size": "maxBatchSize",
    "input": "inputs",
    "output": "outputs",
    "instance_group": "instanceGroups",
    "dynamic_batching": "dynamicBatching",
    "parameters": "parameters",
    "sequence_batching": "sequenceBatching",
    "response_cache": "responseCache",
    "model_warmup": "modelWarmup",
    "version_policy": "versionPolicy",
    "optimization": "optimization",
    "default_model_filename": "defaultModelFilename",
}

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def triton_field_hint(loc: Sequence[int | str], root: str) -> str | None:
    """For an unknown field inside ``models[i]`` that is a real Triton config field: what to use.

    ``loc`` is pydantic's location below ``root`` (``("models", 0, "batchInput")``).
    None when the field is not Triton's (then it is a typo).
    """
    if len(loc) < 3 or loc[0] != "models" or not isinstance(loc[1], int):
        return None
    name = str(loc[-1])
    snake = _snake(name)
    if snake not in triton_field_names():
        return None
    if len(loc) == 3 and snake in TYPED_FIELDS and TYPED_FIELDS[snake] != name:
        return f"Triton's {snake} is the field {TYPED_FIELDS[snake]!r} here (fields are camelCase)"
    at = f"{root}.models[{loc[1]}]" if root else f"models[{loc[1]}]"
    return (
        f"{snake} is a Triton config field, not supported as a field here; use "
        f"{at}.{FRAGMENT_FIELD} (a config.pbtxt fragment, checked with Triton's schema)"
    )


def fragment_problems(model: ModelSpec, at: str) -> list[tuple[str, str]]:
    """What is wrong with ``configPbtxt``: not Triton's schema, a typed field, decoupled."""
    if model.config_pbtxt is None:
        return []
    path = f"{at}.{FRAGMENT_FIELD}"
    fragment = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(model.config_pbtxt, fragment)
    except text_format.ParseError as error:
        return [(path, f"does not parse as a Triton ModelConfig: {error}")]
    problems = []
    for field, _ in fragment.ListFields():
        if field.name in TYPED_FIELDS:
            problems.append(
                (path, f"{field.name} has a typed field: set {at}.{TYPED_FIELDS[field.name]}")
            )
        elif field.name == "ensemble_scheduling":
            problems.append(
                (
                    path,
                    "ensemble_scheduling: an ensemble is served from a source holding the "
                    "ensemble's model directory (its config.pbtxt) and its step models",
                )
            )
    if fragment.model_transaction_policy.decoupled:
        problems.append((path, DECOUPLED_MESSAGE))
    return problems


def _sequence_problems(model: ModelSpec, at: str) -> list[tuple[str, str]]:
    sequence = model.sequence_batching
    if sequence is None:
        return []
    at = f"{at}.sequenceBatching"
    problems = []
    if model.dynamic_batching is not None:
        problems.append((at, "set one scheduler: dynamicBatching or sequenceBatching"))
    if sequence.direct is not None and sequence.oldest is not None:
        problems.append((at, "set one strategy: direct or oldest"))
    oldest = sequence.oldest
    if oldest is not None and model.max_batch_size > 0:
        problems.extend(
            (
                f"{at}.oldest.preferredBatchSize",
                f"{size} exceeds maxBatchSize {model.max_batch_size}",
            )
            for size in oldest.preferred_batch_size or []
            if size > model.max_batch_size
        )
    for i, control_input in enumerate(sequence.control_input or []):
        for j, control in enumerate(control_input.control):
            where = f"{at}.controlInput[{i}].control[{j}]"
            values = [
                name
                for name, value in (
                    ("int32FalseTrue", control.int32_false_true),
                    ("fp32FalseTrue", control.fp32_false_true),
                    ("boolFalseTrue", control.bool_false_true),
                )
                if value is not None
            ]
            if control.kind == "CONTROL_SEQUENCE_CORRID":
                if values or control.data_type is None:
                    problems.append(
                        (
                            where,
                            "CONTROL_SEQUENCE_CORRID takes dataType (TYPE_UINT64 or "
                            "TYPE_STRING) and no false/true values",
                        )
                    )
                elif control.data_type.value not in (
                    "TYPE_UINT64",
                    "TYPE_INT64",
                    "TYPE_UINT32",
                    "TYPE_INT32",
                    "TYPE_STRING",
                ):
                    problems.append(
                        (
                            where,
                            f"{control.data_type}: a correlation id is an integer or TYPE_STRING",
                        )
                    )
            elif len(values) != 1 or control.data_type is not None:
                problems.append(
                    (
                        where,
                        f"{control.kind} takes exactly one of int32FalseTrue, fp32FalseTrue "
                        "or boolFalseTrue (and no dataType)",
                    )
                )
    return problems


def _tensor_problems(model: ModelSpec, at: str) -> list[tuple[str, str]]:
    return [
        (f"{at}.outputs[{i}].{name}", f"{name} applies to inputs only")
        for i, tensor in enumerate(model.outputs or [])
        for name, value in (
            ("optional", tensor.optional),
            ("allowRaggedBatch", tensor.allow_ragged_batch),
        )
        if value is not None
    ]


def _priority_problems(model: ModelSpec, at: str) -> list[tuple[str, str]]:
    batching = model.dynamic_batching
    if batching is None or not batching.priority_queue_policy:
        return []
    at = f"{at}.dynamicBatching.priorityQueuePolicy"
    levels = batching.priority_levels or 0
    return [
        (at, f"level {level!r} must be a number from 1 to priorityLevels ({levels})")
        for level in batching.priority_queue_policy
        if not level.isdigit() or not 1 <= int(level) <= levels
    ]


def _warmup_problems(model: ModelSpec, at: str) -> list[tuple[str, str]]:
    problems = []
    for i, sample in enumerate(model.model_warmup or []):
        for name, data in sample.inputs.items():
            chosen = [
                value
                for value in (data.zero_data, data.random_data, data.input_data_file)
                if value not in (None, False)
            ]
            if len(chosen) != 1:
                problems.append(
                    (
                        f"{at}.modelWarmup[{i}].inputs.{name}",
                        "set exactly one of zeroData: true, randomData: true or inputDataFile",
                    )
                )
        if model.max_batch_size == 0 and sample.batch_size > 1:
            problems.append(
                (
                    f"{at}.modelWarmup[{i}].batchSize",
                    "a model with maxBatchSize 0 takes batchSize 0 or 1",
                )
            )
    policy = model.version_policy
    if policy is not None:
        chosen_policies = [p for p in (policy.latest, policy.all, policy.specific) if p is not None]
        if len(chosen_policies) != 1:
            problems.append((f"{at}.versionPolicy", "set exactly one of latest, all or specific"))
    return problems


def triton_config_problems(model: ModelSpec, at: str) -> list[tuple[str, str]]:
    """Every rule of the typed Triton subset and the fragment, for the model at ``at``."""
    return [
        *_sequence_problems(model, at),
        *_tensor_problems(model, at),
        *_priority_problems(model, at),
        *_warmup_problems(model, at),
        *fragment_problems(model, at),
    ]


__all__ = [
    "DECOUPLED_MESSAGE",
    "FRAGMENT_FIELD",
    "TYPED_FIELDS",
    "fragment_problems",
    "triton_config_problems",
    "triton_field_hint",
]
