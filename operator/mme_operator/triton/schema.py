"""Triton's own schema for model configs: parse text, build the expected proto, compare.

The schema is ``inference.ModelConfig`` from ``model_config.proto``, as compiled into
``tritonclient.grpc.model_config_pb2``; parsing with it catches every config Triton's
text parser would refuse, before an archive is uploaded.
"""

from __future__ import annotations

import difflib
from typing import Any

from google.protobuf import json_format, text_format
from google.protobuf.message import Message

from mme_operator.api import ModelSpec
from mme_operator.api.spec import ApiModel
from mme_operator.api.triton_schema import model_config_pb2 as model_config_pb2


class TritonConfigError(Exception):
    """A rendered Triton config that does not parse, or that says something the spec does not."""


def parse_model_config(text: str) -> model_config_pb2.ModelConfig:
    """Parse ``config.pbtxt`` text with Triton's schema; raise :class:`TritonConfigError` if invalid."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise TritonConfigError(
            f"config.pbtxt does not parse as a Triton ModelConfig: {error}"
        ) from error
    return config


# Spec fields rendered from Triton's own proto (text_format) rather than from the template:
# the typed subset added for source-declared models; their names are the proto's.
TYPED_EXTRA_FIELDS = (
    "version_policy",
    "optimization",
    "sequence_batching",
    "default_model_filename",
    "model_warmup",
    "response_cache",
)


def proto_dict(value: ApiModel | list[Any] | dict[str, Any]) -> Any:
    """A spec value as the dict ``json_format.ParseDict`` takes: proto field names, no unset fields."""
    data: Any = (
        value.model_dump(by_alias=False, exclude_none=True, mode="json")
        if isinstance(value, ApiModel)
        else value
    )
    return _proto_names(data)


def _proto_names(data: Any) -> Any:
    # Python keywords end in "_" as pydantic fields (global_); the proto has them bare.
    if isinstance(data, dict):
        return {str(k).removesuffix("_"): _proto_names(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_proto_names(v) for v in data]
    return data


def spec_message(value: ApiModel, message: Message) -> Message:
    """Fill ``message`` from a typed spec value whose fields mirror the proto's.

    The message counts as set even when every field is at its default, as the template
    writes it (``rate_limiter { }``).
    """
    message.SetInParent()
    json_format.ParseDict(proto_dict(value), message)
    return message


def typed_extras(model: ModelSpec) -> model_config_pb2.ModelConfig:
    """The proto of the spec's typed fields that are rendered through the proto (TYPED_EXTRA_FIELDS)."""
    data: dict[str, Any] = {}
    for field in TYPED_EXTRA_FIELDS:
        value = getattr(model, field)
        if value is None:
            continue
        if isinstance(value, list):
            data[field] = [proto_dict(item) for item in value]
        elif isinstance(value, ApiModel):
            data[field] = proto_dict(value)
        else:
            data[field] = value
    config = model_config_pb2.ModelConfig()
    try:
        json_format.ParseDict(data, config)
    except json_format.ParseError as error:
        raise TritonConfigError(f"model {model.name!r}: {error}") from error
    return config


def config_fragment(model: ModelSpec) -> model_config_pb2.ModelConfig:
    """The spec's ``configPbtxt`` fragment, parsed (empty when unset)."""
    if model.config_pbtxt is None:
        return model_config_pb2.ModelConfig()
    try:
        return parse_model_config(model.config_pbtxt)
    except TritonConfigError as error:
        raise TritonConfigError(f"configPbtxt: {error}") from error


def decoupled(config: model_config_pb2.ModelConfig) -> bool:
    """Whether ``config`` declares a decoupled transaction policy."""
    return bool(config.model_transaction_policy.decoupled)


def expected_model_config(model: ModelSpec) -> model_config_pb2.ModelConfig:
    """The ModelConfig a model's ``config.pbtxt`` must parse to, built field by field from the spec.

    Built without the template, so that comparing the two catches a template that drops,
    misspells or mis-escapes a field.
    """
    config = model_config_pb2.ModelConfig(name=model.name, max_batch_size=model.max_batch_size)
    if model.platform is not None:
        config.platform = model.platform.value
    if model.backend is not None:
        config.backend = model.backend
    for tensor in model.inputs or []:
        added = config.input.add(
            name=tensor.name,
            data_type=model_config_pb2.DataType.Value(tensor.data_type.value),
            dims=tensor.dims,
            optional=bool(tensor.optional),
            allow_ragged_batch=bool(tensor.allow_ragged_batch),
        )
        if tensor.reshape is not None:
            added.reshape.shape.extend(tensor.reshape.shape)
    for tensor in model.outputs or []:
        output = config.output.add(
            name=tensor.name,
            data_type=model_config_pb2.DataType.Value(tensor.data_type.value),
            dims=tensor.dims,
        )
        if tensor.reshape is not None:
            output.reshape.shape.extend(tensor.reshape.shape)
    for group in model.instance_groups or []:
        instance = config.instance_group.add(
            count=group.count,
            kind=model_config_pb2.ModelInstanceGroup.Kind.Value(group.kind.value),
            gpus=group.gpus or [],
        )
        if group.rate_limiter is not None:
            spec_message(group.rate_limiter, instance.rate_limiter)
    batching = model.dynamic_batching
    if batching is not None:
        dynamic = config.dynamic_batching
        # SetInParent: a batcher with every field at its default is still "enabled".
        dynamic.SetInParent()
        dynamic.preferred_batch_size.extend(batching.preferred_batch_size or [])
        dynamic.max_queue_delay_microseconds = batching.max_queue_delay_microseconds
        dynamic.preserve_ordering = batching.preserve_ordering
        if batching.priority_levels is not None:
            dynamic.priority_levels = batching.priority_levels
        if batching.default_priority_level is not None:
            dynamic.default_priority_level = batching.default_priority_level
        policy = batching.default_queue_policy
        if policy is not None:
            queue = dynamic.default_queue_policy
            queue.SetInParent()
            queue.timeout_action = model_config_pb2.ModelQueuePolicy.TimeoutAction.Value(
                policy.timeout_action
            )
            queue.default_timeout_microseconds = policy.default_timeout_microseconds
            queue.allow_timeout_override = policy.allow_timeout_override
            queue.max_queue_size = policy.max_queue_size
        for level, level_policy in (batching.priority_queue_policy or {}).items():
            spec_message(level_policy, dynamic.priority_queue_policy[int(level)])
    for key, value in (model.parameters or {}).items():
        config.parameters[key].string_value = value
    config.MergeFrom(typed_extras(model))
    config.MergeFrom(config_fragment(model))
    return config


def check_model_config(text: str, model: ModelSpec) -> model_config_pb2.ModelConfig:
    """Parse ``text`` and require it to equal :func:`expected_model_config`; return the parsed proto."""
    parsed = parse_model_config(text)
    expected = expected_model_config(model)
    if parsed != expected:
        diff = "\n".join(
            difflib.unified_diff(
                _as_text(expected).splitlines(),
                _as_text(parsed).splitlines(),
                "expected (from spec)",
                "rendered config.pbtxt",
                lineterm="",
            )
        )
        raise TritonConfigError(
            f"rendered config.pbtxt of model {model.name!r} differs from its spec:\n{diff}"
        )
    return parsed


def _as_text(config: model_config_pb2.ModelConfig) -> str:
    # Sorted map keys and a fixed layout make the diff show only real differences.
    return str(text_format.MessageToString(config, as_utf8=True))
