"""Validation of a ModelEndpoint as a user wrote it, with one problem per line.

Each problem names the field path as it appears in the YAML
(``spec.models[1].dynamicBatching.preferredBatchSize``), so the message can be shown
as-is by ``mme-operator validate`` and in the ``SpecValid`` condition.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mme_operator.api.aws_input import (
    bucket_name_problem,
    control_character_problem,
    key_problem,
    source_uri_problem,
)
from mme_operator.api.deployment import deployment_config_problems
from mme_operator.api.resource import ModelEndpoint, ObjectMeta
from mme_operator.api.spec import (
    API_VERSION,
    AWS_MAX_TAGS,
    ENVIRONMENT_KEY_PATTERN,
    ENVIRONMENT_STRING_MAX,
    KIND,
    LOG_VERBOSE_ENV,
    MAX_SPEC_BYTES,
    MAX_USER_TAGS,
    MODEL_LOAD_GPU_LIMIT_ENV,
    OPERATOR_TAG_COUNT,
    PARAMETER_KEY_MAX,
    RESERVED_TAG_PREFIXES,
    SINGLE_GPU_MESSAGE,
    TAG_KEY_MAX,
    TAG_VALUE_MAX,
    UNSERVABLE_BACKENDS,
    InstanceKind,
    ModelEndpointSpec,
    ModelSpec,
)
from mme_operator.api.status import ModelEndpointStatus
from mme_operator.api.triton_config import (
    triton_config_problems,
    triton_field_hint,
)
from mme_operator.sizing.catalogue import CatalogueError, get_catalogue

StatusT = TypeVar("StatusT", bound=BaseModel)

TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
# The metadata keys ObjectMeta reads, as Kubernetes spells them.
_OBJECT_META_KEYS = frozenset(
    field.alias or name for name, field in ObjectMeta.model_fields.items()
)
# Every field of Kubernetes' ObjectMeta: what the API server may hand the operator.
METADATA_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
)
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_NAME = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
ANNOTATIONS_MAX_BYTES = 256 * 1024
TAG_SYMBOLS = frozenset("_.:/=+-@")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a resource: where (field path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecInvalid(Exception):
    """A ModelEndpoint that cannot be reconciled as written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def format_path(loc: Sequence[int | str], root: str = "") -> str:
    """``("spec", "models", 1, "name")`` -> ``spec.models[1].name``."""
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _shown(value: Any, limit: int = 60) -> str:
    """VALUE as a short repr: a problem line names the value, it does not echo 4 KiB of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _pydantic_problems(error: ValidationError, root: str) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        # Tagged unions and function validators add non-field parts to the location.
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = format_path(loc, root)
        kind = err["type"]
        if loc == ["tags"] and kind == "too_long":
            message = (
                f"{len(err['input'])} tags; at most {MAX_USER_TAGS}: AWS allows {AWS_MAX_TAGS} "
                f"per resource and the operator adds {OPERATOR_TAG_COUNT} of its own"
            )
        elif loc[:1] == ["tags"] and kind == "string_pattern_mismatch":
            message = (
                f"{_shown(err['input'])}: tag values may hold only letters, digits, spaces "
                "and _.:/=+-@"
            )
        elif kind == "string_too_long":
            message = f"{len(err['input'])} characters; at most {err['ctx']['max_length']} allowed"
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden" and loc[-1:] in (["modelTransactionPolicy"], ["decoupled"]):
            message = (
                "decoupled models cannot be served: a multi-model endpoint's invoke path refuses "
                "models with a decoupled transaction policy; remove it"
            )
        elif kind == "extra_forbidden" and (hint := triton_field_hint(loc, root)) is not None:
            message = hint
        elif kind == "extra_forbidden":
            message = "unknown field (check the spelling; fields are camelCase)"
        elif kind == "string_pattern_mismatch" and loc[-1:] == ["source"]:
            # Never repeat a source URL that holds user info (a password): the reason alone.
            message = source_uri_problem(str(err["input"])) or (
                f"{_shown(err['input'])} does not match s3://bucket/key, "
                "https://host[:port]/path or file:///path (no control characters)"
            )
        elif kind == "string_pattern_mismatch":
            message = f"{_shown(err['input'])} does not match {err['ctx']['pattern']}"
        else:
            message = err["msg"]
            if "input" in err and not isinstance(err["input"], dict | list):
                message = f"{_shown(err['input'])}: {message}"
        problems.append(Problem(path, message))
    return problems


def model_problems(model: ModelSpec, at: str) -> list[Problem]:
    """Cross-field rules of one model (inline at ``at``, or a Model's ``spec``)."""
    problems: list[Problem] = []
    if model.platform is not None and model.backend is not None:
        problems.append(
            Problem(
                at,
                "set at most one of platform (e.g. onnxruntime_onnx) or backend (e.g. "
                "python); leave both out when the source's config.pbtxt names them",
            )
        )
    problems.extend(Problem(path, message) for path, message in triton_config_problems(model, at))
    batching = model.dynamic_batching
    if batching is not None:
        if model.max_batch_size == 0:
            problems.append(
                Problem(
                    f"{at}.dynamicBatching", "dynamic batching needs maxBatchSize > 0 (it is 0)"
                )
            )
        else:
            for size in batching.preferred_batch_size or []:
                if size > model.max_batch_size:
                    problems.append(
                        Problem(
                            f"{at}.dynamicBatching.preferredBatchSize",
                            f"{size} exceeds maxBatchSize {model.max_batch_size}",
                        )
                    )
        if (
            batching.default_priority_level is not None
            and batching.priority_levels is not None
            and batching.default_priority_level > batching.priority_levels
        ):
            problems.append(
                Problem(
                    f"{at}.dynamicBatching.defaultPriorityLevel",
                    f"{batching.default_priority_level} exceeds priorityLevels {batching.priority_levels}",
                )
            )
    for j, group in enumerate(model.instance_groups or []):
        if group.gpus and group.kind != InstanceKind.KIND_GPU:
            problems.append(
                Problem(
                    f"{at}.instanceGroups[{j}].gpus",
                    f"gpus may only be set with kind KIND_GPU, not {group.kind}",
                )
            )
        if any(gpu != 0 for gpu in group.gpus or []):
            problems.append(
                Problem(f"{at}.instanceGroups[{j}].gpus", f"{group.gpus}: {SINGLE_GPU_MESSAGE}")
            )
    if model.backend in UNSERVABLE_BACKENDS:
        problems.append(
            Problem(
                f"{at}.backend",
                f"{model.backend!r} cannot be served: {UNSERVABLE_BACKENDS[model.backend]}",
            )
        )
    for key in model.parameters or {}:
        if not 1 <= len(key) <= PARAMETER_KEY_MAX:
            problems.append(
                Problem(
                    f"{at}.parameters",
                    f"parameter name {key[:40]!r} must be 1-{PARAMETER_KEY_MAX} characters",
                )
            )
    return problems


def spec_problems(spec: ModelEndpointSpec, root: str = "spec") -> list[Problem]:
    """Cross-field rules a single field's schema cannot express."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, model in enumerate(spec.models):
        at = f"{root}.models[{i}]"
        if model.name in seen:
            problems.append(
                Problem(
                    f"{at}.name",
                    f"duplicate model name {model.name!r} (also {root}.models[{seen[model.name]}])",
                )
            )
        seen.setdefault(model.name, i)
        problems.extend(model_problems(model, at))
    if spec.attach is not None and spec.attach.from_ == "Selector" and spec.attach.selector is None:
        problems.append(
            Problem(f"{root}.attach.selector", "attach.from Selector needs attach.selector")
        )
    problems.extend(_environment_problems(spec, root))
    problems.extend(_tag_problems(spec, root))
    problems.extend(aws_input_problems(spec, root))
    size = len(json.dumps(spec.to_k8s()))
    if size > MAX_SPEC_BYTES:
        problems.append(
            Problem(
                root,
                f"the spec is {size} bytes as JSON; at most {MAX_SPEC_BYTES} (the API server "
                "refuses objects over about 1.5 MiB, and status grows with the models): split "
                "the models over several ModelEndpoints",
            )
        )
    problems.extend(instance_type_problems(spec, root))
    scaling = spec.autoscaling
    if scaling is not None:
        if scaling.min_instances > scaling.max_instances:
            problems.append(
                Problem(
                    f"{root}.autoscaling.minInstances",
                    f"{scaling.min_instances} exceeds maxInstances {scaling.max_instances}",
                )
            )
        elif not scaling.min_instances <= spec.instance_count <= scaling.max_instances:
            problems.append(
                Problem(
                    f"{root}.instanceCount",
                    f"{spec.instance_count} is outside autoscaling.minInstances..maxInstances "
                    f"({scaling.min_instances}..{scaling.max_instances})",
                )
            )
    if spec.deployment_config is not None:
        problems.extend(
            Problem(path, message)
            for path, message in deployment_config_problems(
                spec.deployment_config, spec.instance_count, f"{root}.deploymentConfig"
            )
        )
    return problems


# What an archive's key adds to the prefix: "<model>-<12 hex>.tar.gz" (artifacts/naming.py).
ARCHIVE_NAME_EXTRA = len("-0123456789ab.tar.gz")


def aws_input_problems(spec: ModelEndpointSpec, root: str = "spec") -> list[Problem]:
    """What S3 or SageMaker would refuse in the spec (MME-FACTS #21), found before any call.

    Bucket names by S3's rules, keys (each archive's, each s3:// source's) at most 1024
    bytes, no control characters in the prefix or the container environment, and source
    URLs that are well formed, hold no user info and no port 0.
    """
    problems = []
    artifacts = spec.artifacts
    refused = bucket_name_problem(artifacts.bucket)
    if refused is not None:
        problems.append(Problem(f"{root}.artifacts.bucket", refused))
    if artifacts.prefix is not None:
        longest = max((len(m.name.encode()) for m in spec.models), default=0)
        example = artifacts.prefix + "m" * longest + "x" * ARCHIVE_NAME_EXTRA
        refused = key_problem(example, "the prefix with its longest archive name")
        if refused is not None:
            problems.append(Problem(f"{root}.artifacts.prefix", refused))
    for i, model in enumerate(spec.models):
        refused = source_uri_problem(model.source)
        if refused is not None:
            problems.append(Problem(f"{root}.models[{i}].source", refused))
    for key, value in (spec.environment or {}).items():
        refused = control_character_problem(key, f"variable name {key[:40]!r}")
        refused = refused or control_character_problem(value, f"the value of {key[:40]}")
        if refused is not None:
            problems.append(Problem(f"{root}.environment", refused))
    return problems


def instance_type_problems(spec: ModelEndpointSpec, root: str = "spec") -> list[Problem]:
    """The instance type must be one a multi-model endpoint runs on (the catalogue's data).

    The list is data that a setting extends (AWS adds types), so the CRD cannot hard-code
    it in CEL: the operator and ``validate`` check it, and the local SageMaker refuses
    the same types.
    """
    if spec.instance_type is None:
        if spec.sizing is None:
            return [
                Problem(
                    f"{root}.instanceType",
                    "required field is missing: set instanceType, or sizing for the operator "
                    "to choose one",
                )
            ]
        return _family_problems(spec, root)
    try:
        refusal = get_catalogue().refusal(spec.instance_type)
    except CatalogueError as exc:
        return [Problem(f"{root}.instanceType", f"cannot check the instance type: {exc}")]
    return [] if refusal is None else [Problem(f"{root}.instanceType", refusal)]


def _family_problems(spec: ModelEndpointSpec, root: str) -> list[Problem]:
    """Every allowed family must hold at least one MME type to choose from."""
    try:
        families = {t.family for t in get_catalogue().mme_types()}
    except CatalogueError as exc:
        return [Problem(f"{root}.sizing", f"cannot read the instance catalogue: {exc}")]
    return [
        Problem(
            f"{root}.sizing.allowedFamilies[{i}]",
            f"{family} has no instance type a multi-model endpoint runs on; "
            f"choose from {', '.join(sorted(families))}",
        )
        for i, family in enumerate(spec.sizing.allowed_families or [] if spec.sizing else [])
        if family not in families
    ]


def _environment_problems(spec: ModelEndpointSpec, root: str) -> list[Problem]:
    problems = []
    serving = spec.serving
    for field, value, variable in (
        (
            "modelLoadGpuLimit",
            serving.model_load_gpu_limit if serving else None,
            MODEL_LOAD_GPU_LIMIT_ENV,
        ),
        ("logVerbosity", serving.log_verbosity if serving else None, LOG_VERBOSE_ENV),
    ):
        if value is not None and variable in (spec.environment or {}):
            problems.append(
                Problem(
                    f"{root}.environment",
                    f"{variable} is set by {root}.serving.{field}: remove it from the environment",
                )
            )
    for key in spec.environment or {}:
        if len(key) > ENVIRONMENT_STRING_MAX or not re.match(ENVIRONMENT_KEY_PATTERN, key):
            problems.append(
                Problem(
                    f"{root}.environment",
                    f"variable name {key[:40]!r} must match {ENVIRONMENT_KEY_PATTERN} "
                    f"(at most {ENVIRONMENT_STRING_MAX} characters), as SageMaker requires",
                )
            )
    return problems


def is_tag_text(text: str) -> bool:
    """Whether TEXT uses only the characters AWS allows in tags: ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``."""
    return all(ch in TAG_SYMBOLS or unicodedata.category(ch)[0] in "LZN" for ch in text)


def tag_key_problem(key: str) -> str | None:
    """Why AWS (or the operator, for its own prefix) refuses the tag key KEY; None if it is fine."""
    if not 1 <= len(key) <= TAG_KEY_MAX:
        return f"tag key {key[:40]!r} must be 1-{TAG_KEY_MAX} characters"
    if not is_tag_text(key):
        return f"tag key {key!r} may hold only letters, digits, spaces and _.:/=+-@"
    for prefix in RESERVED_TAG_PREFIXES:
        if key.lower().startswith(prefix):
            owner = "AWS" if prefix == "aws:" else "the operator's ownership tags"
            return f"tag key {key!r}: the prefix {prefix} is reserved for {owner}; rename the tag"
    return None


def _tag_problems(spec: ModelEndpointSpec, root: str) -> list[Problem]:
    problems = []
    for key, value in (spec.tags or {}).items():
        reason = tag_key_problem(key)
        if reason is not None:
            problems.append(Problem(f"{root}.tags", reason))
        # The schema checks values too; repeated here for specs built without it.
        elif len(value) > TAG_VALUE_MAX or not is_tag_text(value):
            problems.append(
                Problem(
                    f"{root}.tags.{key}",
                    f"tag value must be 0-{TAG_VALUE_MAX} letters, digits, spaces and _.:/=+-@",
                )
            )
    return problems


def json_problems(value: Any, path: str) -> list[Problem]:
    """Where VALUE holds something JSON (and so the API server) cannot: non-string keys,
    dates, binary, non-finite numbers. YAML makes these from unquoted text (``2024-01-01:``)."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and not _is_unicode(key):
                    problems.append(Problem(at or "(document)", f"key {key!r} {_NOT_UNICODE}"))
                elif isinstance(key, str):
                    stack.append((child, f"{at}.{key}" if at else key))
                else:
                    problems.append(
                        Problem(
                            at or "(document)",
                            f"key {str(key)[:60]} is a {_yaml_type(key)}, not a string: quote it",
                        )
                    )
        elif isinstance(node, list):
            stack.extend((child, f"{at}[{i}]") for i, child in enumerate(node))
        elif isinstance(node, str) and not _is_unicode(node):
            problems.append(Problem(at, f"{_shown(node)} {_NOT_UNICODE}"))
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append(Problem(at, f"{node} is not a finite number"))
        elif not (node is None or isinstance(node, str | int | float | bool)):
            problems.append(
                Problem(at, f"{_yaml_type(node)} {str(node)[:40]!r}: quote it to make it a string")
            )
    return sorted(problems, key=str)


_NOT_UNICODE = "is not valid Unicode (a lone surrogate, from an escape like \\ud800)"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _yaml_type(value: Any) -> str:
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return {"bytes": "binary value", "tuple": "list", "set": "set"}.get(
        type(value).__name__, type(value).__name__
    )


def validate_spec(data: Any, root: str = "spec") -> tuple[ModelEndpointSpec | None, list[Problem]]:
    """Parse a spec dict; return it (or None) and every problem found."""
    if data is None:
        return None, [Problem(root, "required field is missing")]
    problems = json_problems(data, root)
    if problems:
        return None, problems
    try:
        # Strict JSON-mode validation, as the API server types it: "32" is not an integer
        # and "true" is not a boolean (pydantic's lax mode would quietly convert them).
        spec = ModelEndpointSpec.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as error:
        return None, _pydantic_problems(error, root)
    problems = spec_problems(spec, root)
    return (None if problems else spec), problems


def _unknown_field(name: Any, known: Sequence[str], at: str) -> Problem:
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(known)}"
    path = f"{at}.{name}" if at else str(name)
    return Problem(path, f"unknown field ({hint})")


def _string_map_problems(value: Any, at: str) -> list[Problem]:
    if not isinstance(value, dict):
        return [Problem(at, f"expected a mapping of strings to strings, got {_yaml_type(value)}")]
    return [
        Problem(f"{at}.{key}", f"value must be a string, got {_yaml_type(item)}: quote it")
        for key, item in value.items()
        if isinstance(key, str) and not isinstance(item, str)
    ]


def _label_problems(labels: dict[str, Any]) -> list[Problem]:
    problems = []
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue  # reported as a type problem
        prefix, _, name = key.rpartition("/")
        if (prefix and (len(prefix) > 253 or not re.match(DNS_SUBDOMAIN, prefix))) or not (
            len(name) <= 63 and re.match(LABEL_NAME, name)
        ):
            problems.append(
                Problem(
                    "metadata.labels",
                    f"label key {key[:80]!r} is not a valid Kubernetes label key "
                    "([prefix/]name, name up to 63 of [A-Za-z0-9-_.])",
                )
            )
        elif value and not (len(value) <= 63 and re.match(LABEL_NAME, value)):
            problems.append(
                Problem(
                    f"metadata.labels.{key}",
                    f"{value[:80]!r} is not a valid label value (up to 63 of [A-Za-z0-9-_.], "
                    "starting and ending with a letter or digit)",
                )
            )
    return problems


def _map_size(strings: dict[Any, Any]) -> int:
    return sum(len(str(key)) + len(str(value)) for key, value in strings.items())


def metadata_problems(metadata: Any) -> list[Problem]:
    """What Kubernetes would refuse in ``metadata`` (the parts the operator reads, and typos)."""
    if metadata is None:
        return [Problem("metadata.name", "required field is missing")]
    if not isinstance(metadata, dict):
        return [Problem("metadata", f"expected a mapping with a name, got {_yaml_type(metadata)}")]
    problems = [
        _unknown_field(key, METADATA_FIELDS, "metadata")
        for key in metadata
        if key not in METADATA_FIELDS
    ]
    name = metadata.get("name")
    if name is None or name == "":
        problems.append(Problem("metadata.name", "required field is missing"))
    elif not isinstance(name, str):
        problems.append(Problem("metadata.name", f"must be a string, got {_yaml_type(name)}"))
    elif len(name) > 253 or not re.match(DNS_SUBDOMAIN, name):
        problems.append(
            Problem(
                "metadata.name",
                f"{name[:80]!r} is not a valid name (lowercase letters, digits, '-' and '.', "
                "up to 253 characters, starting and ending with a letter or digit)",
            )
        )
    namespace = metadata.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            problems.append(
                Problem("metadata.namespace", f"must be a string, got {_yaml_type(namespace)}")
            )
        elif len(namespace) > 63 or not re.match(DNS_LABEL, namespace):
            problems.append(
                Problem(
                    "metadata.namespace",
                    f"{namespace[:80]!r} is not a valid namespace (up to 63 lowercase letters, "
                    "digits and '-')",
                )
            )
    if "labels" in metadata and metadata["labels"] is not None:
        type_problems = _string_map_problems(metadata["labels"], "metadata.labels")
        problems += type_problems or _label_problems(metadata["labels"])
    if "annotations" in metadata and metadata["annotations"] is not None:
        type_problems = _string_map_problems(metadata["annotations"], "metadata.annotations")
        problems += type_problems
        if not type_problems and _map_size(metadata["annotations"]) > ANNOTATIONS_MAX_BYTES:
            problems.append(
                Problem(
                    "metadata.annotations",
                    f"{_map_size(metadata['annotations'])} bytes; Kubernetes allows at most "
                    f"{ANNOTATIONS_MAX_BYTES}",
                )
            )
    for field, kind in (("uid", str), ("generation", int)):
        value = metadata.get(field)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            problems.append(
                Problem(f"metadata.{field}", f"must be a {kind.__name__}, got {_yaml_type(value)}")
            )
    return problems


def previous_status(raw: Any) -> ModelEndpointStatus | None:
    """The status as last written, or None when absent or malformed.

    A status never makes a resource invalid: the API server ignores status in create and
    update (the status subresource), and the operator rewrites it on its next pass.
    """
    return parsed_status(ModelEndpointStatus, raw)


def parsed_status(kind: type[StatusT], raw: Any) -> StatusT | None:
    """``raw`` parsed as ``kind``; None when it is no mapping or does not parse."""
    if not isinstance(raw, dict):
        return None
    try:
        return kind.model_validate(raw)
    except ValidationError:
        return None


def validate_resource(doc: Any) -> tuple[ModelEndpoint | None, list[Problem]]:
    """Parse a whole ModelEndpoint document as ``kubectl apply`` would receive it.

    Never raises on any input: every problem comes back as a :class:`Problem`.
    """
    if not isinstance(doc, dict):
        return None, [
            Problem("(document)", "expected a mapping with apiVersion, kind, metadata and spec")
        ]
    problems = json_problems({k: v for k, v in doc.items() if k != "status"}, "")
    if problems:
        return None, problems
    problems = [
        _unknown_field(key, TOP_LEVEL_FIELDS, "") for key in doc if key not in TOP_LEVEL_FIELDS
    ]
    if doc.get("apiVersion") != API_VERSION:
        problems.append(
            Problem("apiVersion", f"expected {API_VERSION!r}, got {doc.get('apiVersion')!r}")
        )
    if doc.get("kind") != KIND:
        problems.append(Problem("kind", f"expected {KIND!r}, got {doc.get('kind')!r}"))
    metadata = doc.get("metadata")
    problems.extend(metadata_problems(metadata))
    spec, spec_errors = validate_spec(doc.get("spec"), "spec")
    problems.extend(spec_errors)
    if problems or spec is None or not isinstance(metadata, dict):
        return None, problems
    meta = ObjectMeta.model_validate(
        {k: v for k, v in metadata.items() if k in _OBJECT_META_KEYS and v is not None}
    )
    status = previous_status(doc.get("status"))
    return ModelEndpoint(metadata=meta, spec=spec, status=status), []


def parse_resource(doc: Any) -> ModelEndpoint:
    """Like :func:`validate_resource`, raising :class:`SpecInvalid` on any problem."""
    resource, problems = validate_resource(doc)
    if resource is None:
        raise SpecInvalid(problems)
    return resource
