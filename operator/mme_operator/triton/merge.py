"""A source's own ``config.pbtxt`` as the base, with the fields the spec sets on top.

Precedence, field by field (top-level fields of ``inference.ModelConfig``):

1. ``name`` is always the spec's model name (MME replaces it with the TargetModel anyway).
2. Every other field the spec's rendered config sets replaces the source's field as a whole
   (``input``, ``instance_group``, ``dynamic_batching``, ...): a typed spec field or a field
   of ``configPbtxt``. Setting one scheduler (``dynamic_batching`` / ``sequence_batching``)
   replaces the source's other one.
3. ``parameters`` merge by key: the spec's keys replace the source's, the others stay.
4. Everything else is the source's. Proto3 scalars at their zero value count as unset, so
   ``maxBatchSize: 0`` in the spec does not override a source's ``max_batch_size``.

Every field overridden or added is reported, as a line a person can read.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import text_format

from mme_operator.api.triton_config import DECOUPLED_MESSAGE
from mme_operator.api.triton_schema import model_config_pb2
from mme_operator.triton.schema import TritonConfigError, decoupled, parse_model_config

SCHEDULERS = ("dynamic_batching", "sequence_batching", "ensemble_scheduling")
_SHOWN = 100


@dataclass(frozen=True)
class MergedConfig:
    """The config.pbtxt an archive carries, and what the spec changed in the source's."""

    text: str
    config: model_config_pb2.ModelConfig
    changes: tuple[str, ...]


def _shown(config: model_config_pb2.ModelConfig, field: str) -> str:
    text = str(text_format.MessageToString(_only(config, field), as_one_line=True)).strip()
    text = text.removeprefix(f"{field} ").removeprefix(f"{field}: ")
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _only(config: model_config_pb2.ModelConfig, field: str) -> model_config_pb2.ModelConfig:
    """A config holding just ``field`` of ``config``."""
    only = model_config_pb2.ModelConfig()
    for descriptor, _ in config.ListFields():
        if descriptor.name == field:
            partial = model_config_pb2.ModelConfig()
            partial.CopyFrom(config)
            for other, _ in partial.ListFields():
                if other.name != field:
                    partial.ClearField(other.name)
            only.MergeFrom(partial)
    return only


def _set_fields(config: model_config_pb2.ModelConfig) -> list[str]:
    return [descriptor.name for descriptor, _ in config.ListFields()]


def check_servable(config: model_config_pb2.ModelConfig, what: str) -> None:
    """Refuse a config MME cannot serve (a decoupled transaction policy, MME-FACTS #7)."""
    if decoupled(config):
        raise TritonConfigError(f"{what}: {DECOUPLED_MESSAGE}")


def merge_model_config(
    spec_text: str, source_text: str, *, name: str, source_label: str
) -> MergedConfig:
    """The source's config (``source_text``) with the spec's rendered config on top.

    ``spec_text`` is what :func:`~mme_operator.triton.render_model_config` made of the
    spec. Raises :class:`TritonConfigError` when the source's config does not parse with
    Triton's schema or the result is decoupled.
    """
    try:
        base = parse_model_config(source_text)
    except TritonConfigError as error:
        raise TritonConfigError(f"{source_label}: {error}") from error
    spec = parse_model_config(spec_text)
    spec.name = name
    merged = model_config_pb2.ModelConfig()
    merged.CopyFrom(base)
    changes: list[str] = []
    source_fields = set(_set_fields(base))
    for field in _set_fields(spec):
        if field == "parameters":
            for key in sorted(spec.parameters):
                value = spec.parameters[key]
                if key in base.parameters:
                    if base.parameters[key] != value:
                        changes.append(
                            f"parameters[{key!r}]: {base.parameters[key].string_value!r} -> "
                            f"{value.string_value!r} (from the spec)"
                        )
                else:
                    changes.append(
                        f"parameters[{key!r}]: added {value.string_value!r} (from the spec)"
                    )
                merged.parameters[key].CopyFrom(value)
            continue
        if field in SCHEDULERS:
            for other in SCHEDULERS:
                if other != field and other in source_fields:
                    changes.append(f"{other}: replaced by the spec's {field}")
                    merged.ClearField(other)
        if field in source_fields:
            before, after = _shown(base, field), _shown(spec, field)
            if before != after:
                changes.append(f"{field}: {before} -> {after} (from the spec)")
        else:
            changes.append(f"{field}: added {_shown(spec, field)} (from the spec)")
        merged.ClearField(field)
        merged.MergeFrom(_only(spec, field))
    check_servable(merged, source_label)
    # No source address in the text: the archive holds the source's content, not its place.
    header = "# The source's config.pbtxt with the fields the ModelEndpoint spec sets.\n"
    text = header + str(text_format.MessageToString(merged))
    return MergedConfig(text=text, config=merged, changes=tuple(changes))
