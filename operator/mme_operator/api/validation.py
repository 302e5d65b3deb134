"""Validation of a ModelEndpoint as a user wrote it, with one problem per line.

Each problem names the field path as it appears in the YAML
(``spec.models[1].dynamicBatching.preferredBatchSize``), so the message can be shown
as-is by ``mme-operator validate`` and in the ``SpecValid`` condition.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mme_operator.api.resource import ModelEndpoint
from mme_operator.api.spec import API_VERSION, KIND, InstanceKind, ModelEndpointSpec
from mme_operator.sizing.catalogue import CatalogueError, get_catalogue


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


def _pydantic_problems(error: ValidationError, root: str) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        # Tagged unions and function validators add non-field parts to the location.
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = format_path(loc, root)
        kind = err["type"]
        if kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden":
            message = "unknown field (check the spelling; fields are camelCase)"
        elif kind == "string_pattern_mismatch":
            message = f"{err['input']!r} does not match {err['ctx']['pattern']}"
        else:
            message = err["msg"]
            if "input" in err and not isinstance(err["input"], dict | list):
                message = f"{err['input']!r}: {message}"
        problems.append(Problem(path, message))
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
        if (model.platform is None) == (model.backend is None):
            problems.append(
                Problem(
                    at,
                    "set exactly one of platform (e.g. onnxruntime_onnx) or backend (e.g. python)",
                )
            )
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
    return problems


def instance_type_problems(spec: ModelEndpointSpec, root: str = "spec") -> list[Problem]:
    """The instance type must be one a multi-model endpoint runs on (the catalogue's data).

    The list is data that a setting extends (AWS adds types), so the CRD cannot hard-code
    it in CEL: the operator and ``validate`` check it, and the local SageMaker refuses
    the same types.
    """
    try:
        refusal = get_catalogue().refusal(spec.instance_type)
    except CatalogueError as exc:
        return [Problem(f"{root}.instanceType", f"cannot check the instance type: {exc}")]
    return [] if refusal is None else [Problem(f"{root}.instanceType", refusal)]


def validate_spec(data: Any, root: str = "spec") -> tuple[ModelEndpointSpec | None, list[Problem]]:
    """Parse a spec dict; return it (or None) and every problem found."""
    try:
        # Strict JSON-mode validation, as the API server types it: "32" is not an integer
        # and "true" is not a boolean (pydantic's lax mode would quietly convert them).
        spec = ModelEndpointSpec.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as error:
        return None, _pydantic_problems(error, root)
    problems = spec_problems(spec, root)
    return (None if problems else spec), problems


def validate_resource(doc: Any) -> tuple[ModelEndpoint | None, list[Problem]]:
    """Parse a whole ModelEndpoint document as ``kubectl apply`` would receive it."""
    if not isinstance(doc, dict):
        return None, [
            Problem("(document)", "expected a mapping with apiVersion, kind, metadata and spec")
        ]
    problems: list[Problem] = []
    if doc.get("apiVersion") != API_VERSION:
        problems.append(
            Problem("apiVersion", f"expected {API_VERSION!r}, got {doc.get('apiVersion')!r}")
        )
    if doc.get("kind") != KIND:
        problems.append(Problem("kind", f"expected {KIND!r}, got {doc.get('kind')!r}"))
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        problems.append(Problem("metadata.name", "required field is missing"))
    spec, spec_errors = validate_spec(doc.get("spec"), "spec")
    problems.extend(spec_errors)
    if problems or spec is None:
        return None, problems
    resource = ModelEndpoint.model_validate({**doc, "spec": spec})
    return resource, []


def parse_resource(doc: Any) -> ModelEndpoint:
    """Like :func:`validate_resource`, raising :class:`SpecInvalid` on any problem."""
    resource, problems = validate_resource(doc)
    if resource is None:
        raise SpecInvalid(problems)
    return resource
