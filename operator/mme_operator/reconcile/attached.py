"""An endpoint's pass over its attached Models: admitted ones join the inline models.

The planner sees one set of models (inline ones by name, attached ones as
``<namespace>/<name>``); the split at the end puts the inline models' status on the
ModelEndpoint (with ``status.attached`` counts) and each attached model's on its Model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from mme_operator.api import ModelEndpoint, ModelEndpointStatus, ModelSpec, ModelStatus
from mme_operator.api.model import AttachedModelStatus, ModelResource
from mme_operator.api.status import (
    CapacityStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
)
from mme_operator.artifacts import ArtifactError, ModelSource
from mme_operator.reconcile.attach import (
    AttachedInput,
    Refusal,
    admit,
    attached_counts,
    model_resource_status,
    previous_model_status,
)
from mme_operator.sagemaker.errors import ErrorClass, classify, describe_error
from mme_operator.tenancy import ArchiveLocation, TenancyPolicy, model_source_problem
from mme_operator.triton import TritonConfigError, render_model_config


@dataclass(frozen=True)
class AttachedView:
    """The Models of one pass: admitted (served), refused, and those with a problem."""

    endpoint: str
    admitted: tuple[ModelResource, ...]
    refused: Mapping[str, tuple[ModelResource, Refusal]]
    problems: Mapping[str, tuple[ModelResource, str]]
    departed: Sequence[ModelStatus]
    namespaces: frozenset[str]
    cache: dict[tuple[str, int, str], tuple[str, str, int | None]]


def view_names(view: AttachedView | None) -> set[str]:
    """The served names of the admitted Models (none without a view)."""
    return {m.served_name for m in view.admitted} if view is not None else set()


def attached_view(
    body: Mapping[str, Any],
    resource: ModelEndpoint,
    attached: AttachedInput,
    policy: TenancyPolicy,
    others: Sequence[ArchiveLocation],
) -> AttachedView:
    """Admit the Models naming this endpoint; check each source against the tenancy rule of
    the Model's OWN namespace (never the endpoint's)."""
    endpoint = f"{resource.metadata.namespace}/{resource.metadata.name}"
    admission = admit(endpoint, resource.spec.attach, attached.models, attached.labels_of)
    by_uid = {m.metadata.uid: m for m in attached.models}
    admitted: list[ModelResource] = []
    problems: dict[str, tuple[ModelResource, str]] = {
        uid: (model, why) for uid, (model, why) in attached.invalid.items() if model is not None
    }
    for model in admission.admitted:
        ns = model.metadata.namespace
        problem = model_source_problem(policy, ns, model.model_name, model.spec.source, others)
        if problem is not None:
            problems[model.metadata.uid] = (model, f"refused by the tenancy policy: {problem}")
        else:
            admitted.append(model)
    refused = {uid: (by_uid[uid], why) for uid, why in admission.refused.items()}
    # Models that leave the served set keep their archive for the grace period, like a
    # model removed from the inline list: their last status tells the plan which it is.
    leaving = [
        s
        for uid, (model, _) in [*refused.items(), *problems.items()]
        if (s := previous_model_status(model.status)) is not None and s.s3_key
    ]
    departed = [*attached.departed, *leaving]
    # Every namespace folder is listed once the endpoint has had Models: a Model deleted
    # while the operator was down leaves an archive in a folder no Model names any more.
    previous = body.get("status") if isinstance(body.get("status"), Mapping) else None
    had = bool(attached.models or departed or (previous or {}).get("attached"))
    namespaces = frozenset({"*"}) if had else frozenset()
    return AttachedView(
        endpoint=endpoint,
        admitted=tuple(admitted),
        refused=refused,
        problems=problems,
        departed=departed,
        namespaces=namespaces,
        cache=attached.cache,
    )


SOURCE_READERS = 16
"""Sources read side by side when a pass meets Models it has not read (their first pass)."""


def with_attached(
    resource: ModelEndpoint,
    view: AttachedView,
    opener: Callable[[str], ModelSource],
    configs: dict[str, str],
    fingerprints: dict[str, str],
    weights: dict[str, int | None],
    unavailable: dict[str, str],
) -> ModelEndpoint:
    """``resource`` with the admitted Models among its models, their configs rendered and
    sources fingerprinted (from the cache while the Model's generation and source stay)."""
    specs = [model.as_model_spec() for model in view.admitted]
    keys = [(m.metadata.uid, m.metadata.generation, m.spec.source) for m in view.admitted]
    missing = [i for i, key in enumerate(keys) if key not in view.cache]
    if missing:
        with ThreadPoolExecutor(max_workers=min(SOURCE_READERS, len(missing))) as pool:
            read = list(pool.map(lambda i: _read(view.admitted[i], specs[i], opener), missing))
        for i, found in zip(missing, read, strict=True):
            if isinstance(found, str):
                unavailable[specs[i].name] = found
            else:
                view.cache[keys[i]] = found
    for spec, key in zip(specs, keys, strict=True):
        if key in view.cache:
            configs[spec.name], fingerprints[spec.name], weights[spec.name] = view.cache[key]
    wanted = set(keys)
    for key in [k for k in view.cache if k not in wanted]:
        del view.cache[key]
    merged = resource.spec.model_copy(update={"models": [*resource.spec.models, *specs]})
    return resource.model_copy(update={"spec": merged})


def _read(
    model: ModelResource, spec: ModelSpec, opener: Callable[[str], ModelSource]
) -> tuple[str, str, int | None] | str:
    """(config.pbtxt, fingerprint, size) of one Model, or why it cannot be served now.

    A throttled or failing read (retryable) is raised: the pass is tried again."""
    try:
        config = render_model_config(spec.model_copy(update={"name": model.model_name}))
    except TritonConfigError as exc:
        return f"config.pbtxt: {exc}"
    try:
        source = opener(spec.source)
        return config, source.fingerprint(), source.size_bytes()
    except ArtifactError as exc:
        return str(exc)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if classify(exc) is ErrorClass.RETRYABLE:
            raise
        return f"cannot read {spec.source}: {describe_error(exc)}"


def split_attached(
    status: ModelEndpointStatus, view: AttachedView
) -> tuple[ModelEndpointStatus, dict[str, AttachedModelStatus]]:
    """(the endpoint's own status, each Model's status by uid) from the pass's status."""
    by_name = {m.name: m for m in status.models or []}
    endpoint_ready = any(
        c.type == ConditionType.ENDPOINT_READY and c.status == ConditionStatus.TRUE
        for c in status.conditions or []
    )
    common: dict[str, Any] = {
        "endpoint": view.endpoint,
        "endpoint_name": status.endpoint_name,
        "region": status.region,
        "endpoint_ready": endpoint_ready,
    }
    out: dict[str, AttachedModelStatus] = {}
    for model in view.admitted:
        served = by_name.get(model.served_name)
        out[model.metadata.uid] = model_resource_status(model, served=served, **common)
    for uid, (model, refusal) in view.refused.items():
        out[uid] = model_resource_status(model, served=None, refusal=refusal, **common)
    for uid, (model, problem) in view.problems.items():
        out[uid] = model_resource_status(model, served=None, problem=problem, **common)
    names = view_names(view)
    own = [m for m in status.models or [] if m.name not in names]
    counts = attached_counts(list(out.values()))
    refused = sum(r.reason == Reason.DOES_NOT_FIT for _, r in view.refused.values())
    update: dict[str, Any] = {
        "models": own or None,
        "attached": counts,
        "model_count": len(own) + (counts.accepted if counts else 0),
    }
    if status.capacity is not None:
        update["capacity"] = _small_capacity(status.capacity, names, refused)
    if refused:
        update["conditions"] = _refusals_told(status.conditions or [], refused)
    return status.model_copy(update=update), out


def _small_capacity(capacity: CapacityStatus, attached: set[str], refused: int) -> CapacityStatus:
    """``status.capacity`` that lists the inline models only: attached ones are summed (the
    endpoint's status stays small with thousands of Models)."""
    listed = capacity.models or []
    theirs = [m for m in listed if m.name in attached]
    return capacity.model_copy(
        update={
            "models": [m for m in listed if m.name not in attached] or None,
            "attached_models": len(theirs) or None,
            "attached_gpu_memory_mib": sum(m.gpu_memory_mib for m in theirs) if theirs else None,
            "refused_models": refused or None,
        }
    )


def _refusals_told(conditions: list[Condition], refused: int) -> list[Condition]:
    """``CapacityFits`` saying how many Models were refused for capacity."""
    note = (
        f"; {refused} attached Model{'s' if refused != 1 else ''} refused for capacity "
        "(Accepted=False/DoesNotFit, spec.attach.beyondCapacity: Refuse)"
    )
    return [
        c.model_copy(update={"message": (c.message or "") + note})
        if c.type == ConditionType.CAPACITY_FITS
        else c
        for c in conditions
    ]
