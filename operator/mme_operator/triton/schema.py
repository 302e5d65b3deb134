"""Triton's own schema for model configs: parse text, build the expected proto, compare.

The schema is ``inference.ModelConfig`` from ``model_config.proto``, as compiled into
``tritonclient.grpc.model_config_pb2``; parsing with it catches every config Triton's
text parser would refuse, before an archive is uploaded.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from google.protobuf import text_format

from mme_operator.api import ModelSpec


def _load_model_config_pb2() -> ModuleType:
    """Triton's ``model_config_pb2`` from the installed tritonclient, loaded on its own.

    Importing it as ``tritonclient.grpc.model_config_pb2`` runs ``tritonclient.grpc``'s
    ``__init__`` first, which loads grpc and numpy (a third of the operator's start-up)
    for a module that needs only protobuf. Loading the file itself gives the same
    classes (protobuf keeps one per descriptor), whoever imports the package later.
    """
    package = importlib.util.find_spec("tritonclient")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("tritonclient is not installed: pip install tritonclient")
    path = Path(next(iter(package.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("mme_operator.triton._model_config_pb2", path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"Triton's model_config_pb2 is missing from {path.parent}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2 as model_config_pb2
else:
    model_config_pb2 = _load_model_config_pb2()


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
        config.input.add(
            name=tensor.name,
            data_type=model_config_pb2.DataType.Value(tensor.data_type.value),
            dims=tensor.dims,
        )
    for tensor in model.outputs or []:
        config.output.add(
            name=tensor.name,
            data_type=model_config_pb2.DataType.Value(tensor.data_type.value),
            dims=tensor.dims,
        )
    for group in model.instance_groups or []:
        config.instance_group.add(
            count=group.count,
            kind=model_config_pb2.ModelInstanceGroup.Kind.Value(group.kind.value),
            gpus=group.gpus or [],
        )
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
    for key, value in (model.parameters or {}).items():
        config.parameters[key].string_value = value
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
