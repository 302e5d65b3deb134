"""Who may attach to this endpoint, and what each attached Model's status says (pure).

A ModelEndpoint's ``spec.attach`` follows Gateway API's ``allowedRoutes``: ``Same`` (the
endpoint's own namespace, the default), ``All``, or ``Selector`` (namespaces whose labels
match). Among the admitted Models of one namespace, two with the same name on the endpoint
collide: the older (creationTimestamp, then metadata.name) keeps it, the other is refused
(NameConflict). Names of different namespaces never collide: each is served as
``<namespace>/<name>``. Nothing here does I/O; the reconcile passes the namespace labels in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mme_operator.api.model import AttachedModelStatus, ModelResource
from mme_operator.api.spec import AttachFrom, AttachSpec, LabelSelector
from mme_operator.api.status import (
    AttachedCounts,
    Condition,
    ConditionStatus,
    ConditionType,
    ModelEndpointStatus,
    ModelState,
    ModelStatus,
    Reason,
)
from mme_operator.reconcile.status import set_condition

Labels = Mapping[str, str]


def selector_matches(selector: LabelSelector, labels: Labels) -> bool:
    """Whether ``labels`` satisfy ``selector`` (every matchLabels entry and expression)."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.match_expressions or []:
        present = requirement.key in labels
        values = requirement.values or []
        if requirement.operator == "In" and not (present and labels[requirement.key] in values):
            return False
        if requirement.operator == "NotIn" and present and labels[requirement.key] in values:
            return False
        if requirement.operator == "Exists" and not present:
            return False
        if requirement.operator == "DoesNotExist" and present:
            return False
    return True


def namespace_admitted(
    attach: AttachSpec | None, endpoint_namespace: str, namespace: str, labels: Labels | None
) -> bool:
    """Whether Models of ``namespace`` (labelled ``labels``; None: unknown) may attach."""
    allowed = attach.from_ if attach is not None else AttachFrom.SAME
    if allowed == AttachFrom.ALL:
        return True
    if allowed == AttachFrom.SAME:
        return namespace == endpoint_namespace
    selector = attach.selector if attach is not None else None
    return selector is not None and labels is not None and selector_matches(selector, labels)


@dataclass(frozen=True)
class Refusal:
    """Why an endpoint does not admit a Model: the Accepted=False reason and message."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class Admission:
    """The endpoint's verdict on the Models that name it."""

    admitted: tuple[ModelResource, ...]
    refused: Mapping[str, Refusal] = field(default_factory=dict)
    """By Model uid."""


def _age(model: ModelResource) -> tuple[str, str]:
    return model.metadata.creation_timestamp, model.metadata.name


def admit(
    endpoint: str,
    attach: AttachSpec | None,
    models: Iterable[ModelResource],
    labels_of: Callable[[str], Labels | None],
) -> Admission:
    """Which of ``models`` the endpoint (``<namespace>/<name>``) admits; why not the others.

    O(n) but for the sort; ``labels_of`` is asked once per namespace.
    """
    endpoint_namespace = endpoint.partition("/")[0]
    verdicts: dict[str, bool] = {}
    admitted: dict[str, ModelResource] = {}
    refused: dict[str, Refusal] = {}
    for model in sorted(models, key=_age):
        namespace = model.metadata.namespace
        if namespace not in verdicts:
            selecting = attach is not None and attach.from_ == AttachFrom.SELECTOR
            labels = labels_of(namespace) if selecting else None
            verdicts[namespace] = namespace_admitted(attach, endpoint_namespace, namespace, labels)
        if not verdicts[namespace]:
            refused[model.metadata.uid] = Refusal(
                Reason.NOT_ALLOWED_BY_ENDPOINT,
                f"ModelEndpoint {endpoint} does not admit Models of namespace {namespace} "
                "(its spec.attach)",
            )
            continue
        first = admitted.get(model.served_name)
        if first is not None:
            refused[model.metadata.uid] = Refusal(
                Reason.NAME_CONFLICT,
                f"Model {namespace}/{first.metadata.name}, older, is served as "
                f"{model.served_name} on ModelEndpoint {endpoint}: give this one another "
                "spec.name",
            )
            continue
        admitted[model.served_name] = model
    return Admission(tuple(admitted.values()), refused)


def already_accepted(model: ModelResource, endpoint: str) -> bool:
    """Whether the last pass of ``endpoint`` accepted ``model`` (it keeps its place)."""
    status = model.status
    if status is None or status.endpoint != endpoint:
        return False
    accepted = _condition(status.conditions, ConditionType.ACCEPTED)
    return accepted is not None and accepted.status == ConditionStatus.TRUE


def beyond_capacity(
    endpoint: str,
    instance_type: str,
    available_mib: int,
    inline_mib: int,
    admitted: Sequence[ModelResource],
    need_mib: Callable[[ModelResource], int],
) -> dict[str, Refusal]:
    """The admitted Models (oldest first) an endpoint under ``beyondCapacity: Refuse``
    refuses: DoesNotFit for each newcomer whose need would take the models past
    ``available_mib`` (one instance's GPU memory less the headroom).

    The inline models and the Models the last pass accepted keep their place whatever
    they need (refusing one would stop a model that serves); newcomers are then taken
    oldest first, each while it fits in what is left, so a large one refused does not
    keep a smaller, younger one out.
    """
    used = inline_mib + sum(need_mib(m) for m in admitted if already_accepted(m, endpoint))
    refused: dict[str, Refusal] = {}
    for model in admitted:
        if already_accepted(model, endpoint):
            continue
        need = need_mib(model)
        if used + need <= available_mib:
            used += need
            continue
        left = max(0, available_mib - used)
        refused[model.metadata.uid] = Refusal(
            Reason.DOES_NOT_FIT,
            f"needs {need} MiB of GPU memory; ModelEndpoint {endpoint} has {left} of "
            f"{available_mib} MiB left on {instance_type} (its spec.attach.beyondCapacity is "
            "Refuse): ask its owners for a larger instance type, lower this Model's "
            "instanceGroups count, or set its gpuMemoryMiB from a measurement",
        )
    return refused


def previous_model_status(status: AttachedModelStatus | None) -> ModelStatus | None:
    """The model part of a Model's status, as an endpoint's ``status.models`` entry."""
    if status is None or status.name is None:
        return None
    return ModelStatus.model_validate(
        status.model_dump(include=set(ModelStatus.model_fields)), from_attributes=False
    )


def model_resource_status(
    model: ModelResource,
    *,
    endpoint: str,
    endpoint_name: str | None,
    region: str | None,
    served: ModelStatus | None,
    endpoint_ready: bool,
    refusal: Refusal | None = None,
    problem: str | None = None,
) -> AttachedModelStatus:
    """A Model's status after its endpoint's pass (or the verdict that it is not served).

    ``served`` is the model's entry of the pass (None: refused or invalid); ``problem`` a
    spec or policy problem of the Model itself (Ready=False/InvalidSpec).
    """
    generation = model.metadata.generation
    before = list((model.status.conditions if model.status else None) or [])
    if refusal is not None:
        accepted = (ConditionStatus.FALSE, refusal.reason, refusal.message)
        ready = (ConditionStatus.FALSE, refusal.reason, refusal.message)
    else:
        accepted = (
            ConditionStatus.TRUE,
            Reason.ATTACHED,
            f"served by ModelEndpoint {endpoint} as {model.served_name}",
        )
        ready = _ready(model, served, endpoint_ready, problem)
    conditions = set_condition(before, ConditionType.ACCEPTED, *accepted, generation)
    conditions = set_condition(conditions, ConditionType.READY, *ready, generation)
    fields = (
        served.model_dump(exclude={"name"})
        if served is not None and refusal is None and problem is None
        else {"state": ModelState.FAILED, "message": (refusal.message if refusal else problem)}
    )
    return AttachedModelStatus(
        **fields,
        name=model.served_name,
        observed_generation=generation,
        endpoint=endpoint,
        endpoint_name=endpoint_name if refusal is None else None,
        region=region if refusal is None else None,
        conditions=conditions,
    )


def _ready(
    model: ModelResource, served: ModelStatus | None, endpoint_ready: bool, problem: str | None
) -> tuple[ConditionStatus, Reason, str]:
    if problem is not None:
        return ConditionStatus.FALSE, Reason.INVALID_SPEC, problem
    if served is None:
        return ConditionStatus.FALSE, Reason.MODEL_PENDING, "not reconciled yet"
    if served.state == ModelState.FAILED:
        return ConditionStatus.FALSE, Reason.SOURCE_ERROR, served.message or "source unusable"
    if served.state == ModelState.LOAD_FAILED:
        return ConditionStatus.FALSE, Reason.LOAD_FAILED, served.message or "failed to load"
    if served.state == ModelState.AVAILABLE and endpoint_ready:
        target = served.serving_target_model or served.target_model
        return ConditionStatus.TRUE, Reason.MODEL_AVAILABLE, f"send TargetModel {target}"
    if served.state == ModelState.AVAILABLE:
        return ConditionStatus.FALSE, Reason.ENDPOINT_NOT_READY, "the endpoint is not InService"
    return (
        ConditionStatus.FALSE,
        Reason.MODEL_PENDING,
        f"{served.state.value}: " + (served.message or "archive not uploaded or loaded yet"),
    )


def unattached_status(model: ModelResource, reason: Reason, message: str) -> AttachedModelStatus:
    """Accepted=False (EndpointNotFound, EndpointGone): no endpoint serves the Model."""
    generation = model.metadata.generation
    before = list((model.status.conditions if model.status else None) or [])
    conditions = set_condition(
        before, ConditionType.ACCEPTED, ConditionStatus.FALSE, reason, message, generation
    )
    conditions = set_condition(
        conditions, ConditionType.READY, ConditionStatus.FALSE, reason, message, generation
    )
    namespace, name = model.endpoint_key
    return AttachedModelStatus(
        name=model.served_name,
        observed_generation=generation,
        endpoint=f"{namespace}/{name}",
        state=ModelState.PENDING,
        message=message,
        conditions=conditions,
    )


def attached_counts(statuses: Sequence[AttachedModelStatus]) -> AttachedCounts | None:
    """``status.attached`` of the endpoint: counts of the Models' verdicts; None when none."""
    if not statuses:
        return None
    counts = AttachedCounts()
    for status in statuses:
        accepted = _condition(status.conditions, ConditionType.ACCEPTED)
        ready = _condition(status.conditions, ConditionType.READY)
        if accepted is None or accepted.status != ConditionStatus.TRUE:
            counts.refused += 1
            continue
        counts.accepted += 1
        if ready is not None and ready.status == ConditionStatus.TRUE:
            counts.ready += 1
        elif status.state in (ModelState.FAILED, ModelState.LOAD_FAILED):
            counts.failed += 1
    return counts


def _condition(conditions: list[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or [] if c.type == type_), None)


def status_changed(current: AttachedModelStatus | None, new: AttachedModelStatus) -> bool:
    """Whether writing ``new`` changes the Model's status (no write when it does not)."""
    if current is None:
        return True
    return current.model_dump(mode="json", exclude_none=True) != new.model_dump(
        mode="json", exclude_none=True
    )


@dataclass
class AttachedInput:
    """What an endpoint's pass gets of the Models that name it (from the operator's index)."""

    models: Sequence[ModelResource]
    labels_of: Callable[[str], Labels | None]
    invalid: Mapping[str, tuple[ModelResource | None, str]] = field(default_factory=dict)
    """By uid: Models whose document does not parse, and why (Ready=False/InvalidSpec)."""
    departed: Sequence[ModelStatus] = ()
    """The last status of Models deleted since the last pass: their archives' grace period."""
    cache: dict[tuple[str, int, str], tuple[str, str, int | None]] = field(default_factory=dict)
    """(uid, generation, source) -> (config.pbtxt, source fingerprint, size): a pass reads no
    source of a Model that did not change (no HEAD per Model per pass)."""
    list_every_folder: bool = False
    """The pass lists every namespace's folder, not only those whose archives changed since
    the last status (a drift check found something amiss: the status is not trusted)."""


def combined_previous(
    previous: ModelEndpointStatus | None,
    admitted: Sequence[ModelResource],
    departed: Sequence[ModelStatus],
) -> ModelEndpointStatus | None:
    """The endpoint's status as if its attached Models were inline: what the plan reads."""
    extra = [s for m in admitted if (s := previous_model_status(m.status)) is not None]
    extra += departed
    if not extra:
        return previous
    base = previous or ModelEndpointStatus()
    own = [m for m in base.models or [] if "/" not in m.name]
    return base.model_copy(update={"models": own + extra})
