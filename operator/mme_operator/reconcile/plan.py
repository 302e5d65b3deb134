"""The plan: a pure function from (desired, observed) to an ordered list of actions.

No I/O happens here. The same plan backs ``mme-operator plan`` (a dry run a person reads)
and the operator (which applies it). Besides actions, a plan may say that the reconcile
must *wait* (SageMaker is busy: come back later) or is *blocked* (something only the user
can fix: say what, and do not retry until the spec changes).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mme_operator.api import ModelEndpointStatus, Reason
from mme_operator.api.spec import DeletionPolicy
from mme_operator.api.status import MAX_SUPERSEDED_ARCHIVES, parse_rfc3339, rfc3339
from mme_operator.artifacts.naming import DesiredArchive
from mme_operator.reconcile.desired import (
    ADOPT_ANNOTATION,
    RETRY_UPDATE_ANNOTATION,
    DesiredState,
)
from mme_operator.reconcile.loading import checked_before, served_archive, serves
from mme_operator.reconcile.observe import TRANSITIONAL, ObservedForDeletion, ObservedState
from mme_operator.reconcile.rollout import rolled_back, rolled_back_message
from mme_operator.sagemaker.deployment import describe_rollout


@dataclass(frozen=True)
class Action(abc.ABC):
    """One idempotent step against AWS."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The step as a person reads it in ``mme-operator plan``."""


@dataclass(frozen=True)
class UploadArchive(Action):
    archive: DesiredArchive

    def describe(self) -> str:
        return f"upload model {self.archive.model_name!r} to {self.archive.key}"


@dataclass(frozen=True)
class DeleteArchive(Action):
    key: str
    once_uploaded: str | None = None
    """Delete only if this pass uploaded that archive (the replacement of the one deleted)."""
    once_loaded: str | None = None
    """Delete only if this pass's load check of that model said its new TargetModel loaded
    (run after the load checks)."""

    def describe(self) -> str:
        once = [f"{self.once_uploaded} is uploaded"] if self.once_uploaded else []
        once += [f"model {self.once_loaded!r} loaded its new version"] if self.once_loaded else []
        if once:
            return f"delete superseded archive {self.key} once {' and '.join(once)}"
        return f"delete stale archive {self.key}"


@dataclass(frozen=True)
class AdoptEndpoint(Action):
    name: str
    arn: str

    def describe(self) -> str:
        return f"adopt existing endpoint {self.name} (add ownership tags)"


@dataclass(frozen=True)
class CreateModel(Action):
    name: str

    def describe(self) -> str:
        return f"create SageMaker model {self.name}"


@dataclass(frozen=True)
class CreateEndpointConfig(Action):
    name: str

    def describe(self) -> str:
        return f"create endpoint config {self.name}"


@dataclass(frozen=True)
class CreateEndpoint(Action):
    name: str
    config_name: str

    def describe(self) -> str:
        return f"create endpoint {self.name} with config {self.config_name}"


@dataclass(frozen=True)
class UpdateEndpoint(Action):
    name: str
    config_name: str
    from_config: str
    retain_instance_count: bool = False
    """Keep the live instance count (autoscaling's) instead of the config's."""

    def describe(self) -> str:
        keep = " (keeping the live instance count)" if self.retain_instance_count else ""
        return f"update endpoint {self.name}: {self.from_config} -> {self.config_name}{keep}"


@dataclass(frozen=True)
class DeleteEndpoint(Action):
    name: str

    def describe(self) -> str:
        return f"delete endpoint {self.name}"


@dataclass(frozen=True)
class DeleteEndpointConfig(Action):
    name: str

    def describe(self) -> str:
        return f"delete endpoint config {self.name}"


@dataclass(frozen=True)
class DeleteModel(Action):
    name: str

    def describe(self) -> str:
        return f"delete SageMaker model {self.name}"


@dataclass(frozen=True)
class ApplyScaling(Action):
    endpoint_name: str

    def describe(self) -> str:
        return f"apply autoscaling to endpoint {self.endpoint_name}"


@dataclass(frozen=True)
class RemoveScaling(Action):
    endpoint_name: str

    def describe(self) -> str:
        return f"remove autoscaling from endpoint {self.endpoint_name}"


@dataclass(frozen=True)
class LoadCheck(Action):
    """Invoke a new TargetModel once, so that MME loads it (:mod:`.loading`)."""

    endpoint_name: str
    model_name: str
    target_model: str
    warm_up: bool = False
    """A real inference of zeros (``warmup: true``) rather than a request with no inputs."""

    def describe(self) -> str:
        if self.warm_up:
            return f"warm up model {self.model_name!r} ({self.target_model})"
        return f"load model {self.model_name!r} ({self.target_model}) once, to check it loads"


@dataclass(frozen=True)
class Wait:
    """SageMaker is busy; come back later. ``reason`` is a condition reason."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class Blocked:
    """Only the user can fix this; the message says what to change."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class SupersededArchive:
    """A model's previous archive, kept until ``expires_at`` for clients still sending it."""

    model_name: str
    key: str
    target_model: str
    expires_at: datetime


@dataclass(frozen=True)
class Plan:
    """What to do now, and what happens after."""

    actions: tuple[Action, ...] = ()
    wait: Wait | None = None
    blocked: Blocked | None = None
    failed_config: str | None = None
    """An EndpointConfig whose update failed (recorded so it is not re-applied)."""
    notes: tuple[str, ...] = field(default=())
    retry_token: str | None = None
    """The retry-update annotation value this plan acts on (recorded so it retries once)."""
    superseded: tuple[SupersededArchive, ...] = ()
    """Previous archives kept through the grace period (and published in status)."""
    upload_first: bool = False
    """No archive that could be served is in S3 yet: SageMaker is created or updated only
    once an upload of this plan succeeded (:data:`BILLED_ACTIONS`)."""
    serving_previous: tuple[tuple[str, ServingPrevious], ...] = ()
    """Models still served from their last archive: their new one is not in S3 (yet)."""

    def describe(self) -> list[str]:
        """The plan as lines a person reads."""
        lines = [f"{i + 1}. {a.describe()}" for i, a in enumerate(self.actions)]
        if not lines:
            lines.append("nothing to do")
        lines.extend(
            f"keep previous archive {s.key} of model {s.model_name!r} until {rfc3339(s.expires_at)}"
            for s in self.superseded
        )
        lines.extend(
            f"keep serving {s.key} for model {name!r} until its new archive is in S3 and loaded"
            for name, s in self.serving_previous
        )
        if self.wait:
            lines.append(f"then wait: {self.wait.message}")
        if self.blocked:
            lines.append(f"blocked ({self.blocked.reason}): {self.blocked.message}")
        lines.extend(f"note: {n}" for n in self.notes)
        return lines


MAX_SUPERSEDED = MAX_SUPERSEDED_ARCHIVES


@dataclass(frozen=True)
class ServingPrevious:
    """A model still served from its last archive because its new one does not serve (yet).

    The new one is not in S3 (its upload failed, its source could not be read, another
    object holds its key), or it is but the endpoint has not loaded it (Loading, or
    LoadFailed): the archive that served keeps serving (status and the client mapping keep
    its TargetModel) and is kept however long that lasts. Once ``replacement`` is in S3 and
    loaded it becomes a superseded archive, kept until ``expires_at`` (None: no grace
    period, it goes).
    """

    model_name: str
    key: str
    target_model: str
    replacement: str | None
    expires_at: datetime | None


def _recorded_superseded(status: ModelEndpointStatus) -> list[SupersededArchive]:
    """The superseded archives the last pass kept, each with its own expiry."""
    found = []
    for entry in status.superseded_archives or []:
        expires = parse_rfc3339(entry.expires_at)
        if expires is not None:
            found.append(SupersededArchive(entry.model, entry.s3_key, entry.target_model, expires))
    for model in status.models or []:  # a status written before the list existed
        expires = parse_rfc3339(model.previous_expires_at) if model.previous_expires_at else None
        if model.previous_s3_key and model.previous_target_model and expires is not None:
            found.append(
                SupersededArchive(
                    model.name, model.previous_s3_key, model.previous_target_model, expires
                )
            )
    return found


def superseded_archives(
    desired: DesiredState,
    observed: ObservedState,
    status: ModelEndpointStatus | None,
    now: datetime | None,
) -> tuple[tuple[SupersededArchive, ...], dict[str, ServingPrevious]]:
    """The archives kept though no model's current archive, and the models served from one.

    Pure; ``now`` given. The archive a model served at the last pass keeps serving while the
    model's new archive is not in S3 (see :class:`ServingPrevious`). Once the new one is
    there, or once the model is removed or renamed, the old one is superseded: kept until
    ``now`` + the grace period for clients still sending its TargetModel. Each superseded
    archive keeps its own expiry however many changes follow (v1 -> v2 -> v3 keeps v1 until
    v1's expiry and v2 until v2's), up to :data:`MAX_SUPERSEDED`. Only archives this
    resource owns and S3 still holds are kept. Without a clock (``now`` None) or a grace
    period, no superseded archive is kept; a model's serving archive is kept regardless.
    """
    if status is None:
        return (), {}
    grace = desired.grace_period_seconds
    expiry = now + timedelta(seconds=grace) if now is not None and grace > 0 else None
    current = {a.model_name: a for a in desired.archives}
    in_spec = {m.name for m in desired.resource.spec.models}

    def ours(key: str) -> bool:
        stored = observed.archives.get(key)
        return stored is not None and stored.owned_by(desired.owner_uid)

    candidates = _recorded_superseded(status)
    serving: dict[str, ServingPrevious] = {}
    for model in status.models or []:
        new = current.get(model.name)
        key, target = served_archive(model)
        # A version that never loaded and is replaced in turn: superseded like any other.
        unloaded = model.s3_key if model.s3_key != key else None
        replaced = new is None or new.key != unloaded
        if unloaded and model.target_model and replaced and expiry is not None and ours(unloaded):
            candidates.append(SupersededArchive(model.name, unloaded, model.target_model, expiry))
        if not key or not target or not ours(key):
            continue
        waiting = new is None or (
            new.key != key and not serves(desired.load_check, status, new, ours)
        )
        if model.name in in_spec and waiting:
            serving[model.name] = ServingPrevious(
                model.name, key, target, new.key if new else None, expiry
            )
        elif (new is None or new.key != key) and expiry is not None:
            candidates.append(SupersededArchive(model.name, key, target, expiry))
    if expiry is None:
        return (), serving
    wanted = {a.key for a in desired.archives} | {s.key for s in serving.values()}
    kept: dict[str, SupersededArchive] = {}
    for candidate in candidates:  # the recorded ones first: an archive keeps its first expiry
        if candidate.key in wanted or candidate.key in kept or not ours(candidate.key):
            continue
        if now is not None and now < candidate.expires_at:
            kept[candidate.key] = candidate
    latest = sorted(kept.values(), key=lambda s: (s.expires_at, s.key))[-MAX_SUPERSEDED:]
    return tuple(latest), serving


def settle_superseded(
    plan: Plan, uploaded: Collection[str], replaced: Collection[str] | None = None
) -> tuple[tuple[SupersededArchive, ...], dict[str, ServingPrevious]]:
    """After applying ``plan``: (superseded archives to record, models still served from one).

    A model whose new archive serves after this pass (``replaced``: the models whose new
    archive is in S3 and loaded; without it, those whose new archive this pass uploaded)
    is no longer served from its previous one: that one joins the superseded archives with
    the expiry the plan gave it, which is when its grace period starts.
    """
    superseded = list(plan.superseded)
    serving: dict[str, ServingPrevious] = {}
    for name, previous in plan.serving_previous:
        done = name in replaced if replaced is not None else previous.replacement in uploaded
        if previous.replacement is None or not done:
            serving[name] = previous
        elif previous.expires_at is not None:
            superseded.append(
                SupersededArchive(name, previous.key, previous.target_model, previous.expires_at)
            )
    ordered = sorted(superseded, key=lambda s: (s.expires_at, s.key))[-MAX_SUPERSEDED:]
    return tuple(ordered), serving


def archive_conflicts(desired: DesiredState, observed: ObservedState) -> dict[str, str]:
    """Models whose archive key is taken by an object this resource does not own.

    Such an object is never served as ours, overwritten or deleted: the model is reported
    Failed with the key, and is looked at again until the object is gone.
    """
    conflicts = {}
    for archive in desired.archives:
        stored = observed.archives.get(archive.key)
        if stored is not None and not stored.owned_by(desired.owner_uid):
            conflicts[archive.model_name] = (
                f"s3://{desired.bucket}/{archive.key} already exists and is not owned by this "
                "ModelEndpoint; it is neither served, "
                "overwritten nor deleted: remove that object, or give this ModelEndpoint its "
                "own artifacts.prefix"
            )
    return conflicts


def plan_archives(
    desired: DesiredState,
    observed: ObservedState,
    unavailable: Sequence[str] = (),
    keep: Collection[str] = (),
) -> list[Action]:
    """Upload what is missing; delete stale archives this resource owns.

    Archives of models in ``unavailable`` (whose source could not be read this time) are
    kept: a transient source outage must not take a serving model away. So are the
    archives in ``keep`` (see :func:`superseded_archives`).
    """
    actions: list[Action] = [
        UploadArchive(a) for a in desired.archives if a.key not in observed.archives
    ]
    wanted = {a.key for a in desired.archives} | set(keep)
    for key, stored in sorted(observed.archives.items()):
        if key in wanted or stored.owner_uid != desired.owner_uid:
            continue
        if stored.model_name in unavailable:
            continue
        actions.append(DeleteArchive(key))
    return actions


BILLED_ACTIONS = (CreateModel, CreateEndpointConfig, CreateEndpoint, UpdateEndpoint)
"""Steps that make (or keep changing) what SageMaker bills for."""


def servable_in_s3(
    desired: DesiredState, observed: ObservedState, unavailable: Sequence[str]
) -> bool:
    """Whether some model's archive is already in S3, ours, for the endpoint to serve."""
    if any(
        (stored := observed.archives.get(a.key)) is not None and stored.owned_by(desired.owner_uid)
        for a in desired.archives
    ):
        return True
    return any(
        stored.owned_by(desired.owner_uid) and stored.model_name in unavailable
        for stored in observed.archives.values()
    )


def no_servable_models(
    desired: DesiredState, observed: ObservedState, unavailable: Sequence[str]
) -> Blocked | None:
    """Why nothing is created or updated on SageMaker: no model could be served; else None.

    A model is servable when its archive can be uploaded now (its source was read and its
    key is not taken by another owner's object) or one of this resource's archives of it is
    already in S3 (a source that became unreadable since: the endpoint still serves that
    archive, so a transient outage changes nothing). Without one, an endpoint would bill for
    GPU instances that have nothing to serve. An existing endpoint is left as it is, never
    deleted: whatever it still serves keeps being served.
    """
    conflicts = archive_conflicts(desired, observed)
    if any(a.model_name not in conflicts for a in desired.archives) or servable_in_s3(
        desired, observed, unavailable
    ):
        return None
    problems = [f"source of model {name!r} could not be read" for name in unavailable]
    problems += [f"archive key of model {name!r} is taken" for name in sorted(conflicts)]
    if not problems:
        # An endpoint waiting for its first attached Model (spec.models may be empty).
        problems = ["spec.models is empty and no Model (kind Model) is attached yet"]
    endpoint = observed.endpoint
    kept = (
        f"endpoint {endpoint.name} ({endpoint.status}) is left as it is, neither updated nor "
        "deleted"
        if endpoint is not None
        else "no SageMaker model, endpoint config or endpoint is created (nothing to bill for)"
    )
    return Blocked(
        Reason.NO_SERVABLE_MODELS,
        f"no model can be served ({'; '.join(problems)}; status.models says why): {kept} "
        "until a model's source can be read; sources are looked at again at each drift check",
    )


def plan_reconcile(
    desired: DesiredState,
    observed: ObservedState,
    status: ModelEndpointStatus | None = None,
    unavailable: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> Plan:
    """The ordered actions that move AWS from ``observed`` to ``desired``.

    Adding, changing or removing models yields S3 actions only; a new EndpointConfig and
    UpdateEndpoint come only from endpoint-level changes (instance type/count, image,
    environment), which change the config's name. ``now`` dates the grace period of
    superseded archives (none is kept without it).
    """
    superseded, serving = superseded_archives(desired, observed, status, now)
    keep = {s.key for s in superseded} | {s.key for s in serving.values()}
    plan = _plan_reconcile(desired, observed, status, unavailable, keep)
    # Without a grace period, the archive that serves goes in the pass where its
    # replacement comes to serve: uploaded, and loaded where the load check runs.
    uploading = {a.archive.key for a in plan.actions if isinstance(a, UploadArchive)}
    swaps = tuple(
        swap
        for s in serving.values()
        if s.expires_at is None and (swap := serving_swap(desired, plan, s, uploading))
    )
    return dataclasses.replace(
        plan,
        actions=plan.actions + swaps,
        superseded=superseded,
        serving_previous=tuple(sorted(serving.items())),
        # A previous archive kept through its grace period still serves its clients.
        upload_first=not keep and not servable_in_s3(desired, observed, unavailable),
    )


def serving_swap(
    desired: DesiredState, plan: Plan, serving: ServingPrevious, uploading: Collection[str]
) -> DeleteArchive | None:
    """Without a grace period: the deletion of the archive that serves, in the pass where its
    replacement comes to serve; None when it cannot this pass (it stays).

    With the load check, only once this pass's check of the model said the replacement
    loaded (a new version Triton cannot load leaves the old one serving); without it, once
    the replacement is uploaded.
    """
    if serving.replacement is None:
        return None
    uploaded = serving.replacement if serving.replacement in uploading else None
    if any(isinstance(a, LoadCheck) and a.model_name == serving.model_name for a in plan.actions):
        return DeleteArchive(serving.key, once_uploaded=uploaded, once_loaded=serving.model_name)
    if uploaded is not None and not desired.load_check:
        return DeleteArchive(serving.key, once_uploaded=uploaded)
    return None


def _plan_reconcile(
    desired: DesiredState,
    observed: ObservedState,
    status: ModelEndpointStatus | None,
    unavailable: Sequence[str],
    keep: Collection[str],
) -> Plan:
    status = status or ModelEndpointStatus()
    sm = desired.sagemaker
    name = sm.endpoint.name
    config = sm.endpoint_config.name
    endpoint = observed.endpoint
    actions = plan_archives(desired, observed, unavailable, keep)

    if endpoint is not None and not observed.owns_endpoint(desired.owner_uid):
        refused = not_owned(desired, observed)
        if refused is not None:
            # Nothing at all while the endpoint is someone else's: not even our archives
            # (its ModelDataUrl may be where they would land).
            return Plan(blocked=refused)
        actions.append(AdoptEndpoint(name, endpoint.arn))

    nothing_to_serve = no_servable_models(desired, observed, unavailable)
    if nothing_to_serve is not None:
        return Plan(tuple(actions), blocked=nothing_to_serve)

    if not observed.model_exists:
        actions.append(CreateModel(sm.model.name))
    if not observed.endpoint_config_exists:
        actions.append(CreateEndpointConfig(config))

    if endpoint is None:
        actions.append(CreateEndpoint(name, config))
        return Plan(tuple(actions), wait=Wait(Reason.CREATING, f"endpoint {name} is being created"))

    if endpoint.status in TRANSITIONAL:
        reason = {
            "Creating": Reason.CREATING,
            "RollingBack": Reason.ROLLING_BACK,
            "Deleting": Reason.DELETING,
        }.get(endpoint.status, Reason.UPDATING)
        rollout = f" ({describe_rollout(endpoint.rollout)})" if endpoint.rollout else ""
        return Plan(
            tuple(actions),
            wait=Wait(
                reason, f"endpoint {name} is {endpoint.status}{rollout}; waiting for it to settle"
            ),
        )

    if endpoint.status == "Failed":
        if endpoint.config_name != config:
            # A Failed endpoint cannot be updated; the spec changed, so start it afresh.
            actions.append(DeleteEndpoint(name))
            return Plan(
                tuple(actions),
                wait=Wait(Reason.DELETING, f"failed endpoint {name} is being re-created"),
            )
        return Plan(
            tuple(actions),
            blocked=Blocked(
                Reason.ENDPOINT_FAILED,
                f"SageMaker reports endpoint {name} Failed: {endpoint.failure_reason or 'no reason given'}. "
                "Fix the cause in the spec (image, instance type, role, artifacts) to retry, "
                "or delete the endpoint in SageMaker to have it re-created.",
            ),
        )

    if endpoint.status != "InService":  # OutOfService and states SageMaker may add later
        return Plan(
            tuple(actions),
            wait=Wait(Reason.UPDATING, f"endpoint {name} is {endpoint.status}"),
        )

    if endpoint.config_name != config:
        failed = status.failed_endpoint_config_name == config or (
            status.requested_endpoint_config_name == config
            and status.endpoint_config_name != config
        )
        token = desired.retry_update_token
        retry = failed and token is not None and token != status.retry_update_consumed
        if failed and not retry and rolled_back(status, config, endpoint.failure_reason):
            why = rolled_back_message(desired, endpoint)
            return Plan(
                tuple(actions), failed_config=config, blocked=Blocked(Reason.ROLLED_BACK, why)
            )
        if failed and not retry:
            return Plan(
                tuple(actions),
                failed_config=config,
                blocked=Blocked(
                    Reason.UPDATE_FAILED,
                    f"updating endpoint {name} to {config} failed and SageMaker rolled back to "
                    f"{endpoint.config_name}: {endpoint.failure_reason or 'no reason given'}. "
                    "It is not retried until the spec changes; to retry it as it is (e.g. after "
                    f"a capacity or quota error), set the annotation {RETRY_UPDATE_ANNOTATION} "
                    "to a new value.",
                ),
            )
        actions.extend(_update_endpoint(desired, observed, endpoint.config_name))
        return Plan(
            tuple(actions),
            wait=Wait(Reason.UPDATING, f"endpoint {name} is being updated"),
            retry_token=token if retry else None,
        )

    # Steady state: the endpoint runs the desired config.
    current_scaling = observed.scaling.as_desired() if observed.scaling is not None else None
    if desired.scaling is not None and current_scaling != desired.scaling:
        actions.append(ApplyScaling(name))
    elif desired.scaling is None and observed.scaling is not None:
        actions.append(RemoveScaling(name))
    actions.extend(DeleteEndpointConfig(c) for c in observed.superseded_configs)
    actions.extend(DeleteModel(m) for m in observed.superseded_models)
    actions.extend(_load_checks(desired, observed, status, unavailable))
    return Plan(tuple(actions))


def _load_checks(
    desired: DesiredState,
    observed: ObservedState,
    status: ModelEndpointStatus,
    unavailable: Sequence[str],
) -> list[Action]:
    """One invocation per TargetModel not load-checked yet (every model with the load check
    on, else only ``warmup: true`` ones); a warmed-up one is not warmed up again."""
    checked = checked_before(status, desired.resource.metadata.generation)
    conflicts = archive_conflicts(desired, observed)
    actions: list[Action] = []
    for archive in desired.archives:
        warm_up = archive.model_name in desired.warmup_models
        before = checked.get(archive.target_model)
        done = before is not None and (before.warmed_up or not warm_up or before.loaded is False)
        if (
            (desired.load_check or warm_up)
            and not done
            and archive.model_name not in unavailable
            and archive.model_name not in conflicts
        ):
            actions.append(
                LoadCheck(desired.endpoint_name, archive.model_name, archive.target_model, warm_up)
            )
    return actions


def not_owned(desired: DesiredState, observed: ObservedState) -> Blocked | None:
    """Why an existing endpoint this resource does not own stays out of reach; None: adopt it.

    An endpoint that carries any ``mme-operator.io/`` tag is held by some ModelEndpoint and is
    never adopted, re-tagged, updated or deleted, whatever the annotation or name; the message
    does not say whose it is. An endpoint no ModelEndpoint holds is adopted only where the
    operator allows adoption (``MME_ALLOW_ENDPOINT_ADOPTION``) and the annotation names it.
    """
    name = desired.endpoint_name
    rename = (
        "set spec.endpointName to another name (or leave it unset for the name derived from "
        "namespace and name)"
    )
    if observed.endpoint_claimed or observed.endpoint_owner_uid:
        return Blocked(
            Reason.NOT_OWNED,
            f"SageMaker endpoint {name} belongs to another ModelEndpoint; it is never adopted, "
            f"changed or deleted from here: {rename}.",
        )
    if not desired.adoption_allowed:
        return Blocked(
            Reason.NOT_OWNED,
            f"SageMaker endpoint {name} already exists and is not managed by the operator; "
            f"adopting it (annotation {ADOPT_ANNOTATION}: {name}) is disabled on this "
            f"operator (MME_ALLOW_ENDPOINT_ADOPTION): {rename}.",
        )
    if not desired.adopt:
        return Blocked(
            Reason.NOT_OWNED,
            f"SageMaker endpoint {name} already exists and is not managed by this "
            f"ModelEndpoint. To manage it, add the annotation {ADOPT_ANNOTATION}: {name}; "
            f"otherwise {rename}.",
        )
    return None


def _update_endpoint(
    desired: DesiredState, observed: ObservedState, serving_config: str
) -> list[Action]:
    """UpdateEndpoint onto the desired config, keeping an autoscaled fleet's size.

    With ``spec.autoscaling`` the live instance count is autoscaling's, so it is retained
    (``RetainAllVariantProperties``) rather than reset to ``spec.instanceCount``. SageMaker
    fails an update that changes the instance type of an autoscaled variant: scaling is
    deregistered first, and the steady state registers it again once the update is done.
    """
    sm = desired.sagemaker
    actions: list[Action] = []
    type_changes = (
        observed.serving_instance_type is not None
        and observed.serving_instance_type != sm.endpoint_config.instance_type
    )
    if observed.scaling is not None and type_changes:
        actions.append(RemoveScaling(sm.endpoint.name))
    actions.append(
        UpdateEndpoint(
            sm.endpoint.name,
            sm.endpoint_config.name,
            serving_config,
            retain_instance_count=desired.scaling is not None,
        )
    )
    return actions


def plan_delete(desired: DesiredState, observed: ObservedForDeletion) -> Plan:
    """What removing a ModelEndpoint takes, honouring ``deletionPolicy``.

    ``Retain`` removes nothing. ``Delete`` removes only what carries this resource's owner
    uid: autoscaling, the endpoint (waiting until it is gone), then configs, models and
    archives.
    """
    if desired.resource.spec.deletion_policy == DeletionPolicy.RETAIN:
        return Plan(notes=("deletionPolicy is Retain: AWS resources and archives are kept",))
    name = desired.endpoint_name
    endpoint = observed.endpoint
    owned = endpoint is not None and observed.endpoint_owner_uid == desired.owner_uid
    actions: list[Action] = []
    notes: list[str] = []
    if endpoint is not None and not owned:
        notes.append(f"endpoint {name} is not owned by this ModelEndpoint and is kept")
    elif endpoint is not None:
        if observed.scaling is not None:
            actions.append(RemoveScaling(name))
        if endpoint.status != "Deleting":
            actions.append(DeleteEndpoint(name))
        return Plan(
            tuple(actions),
            wait=Wait(Reason.DELETING, f"endpoint {name} is being deleted"),
            notes=tuple(notes),
        )
    actions.extend(DeleteEndpointConfig(c) for c in observed.configs)
    actions.extend(DeleteModel(m) for m in observed.models)
    actions.extend(
        DeleteArchive(key)
        for key, stored in sorted(observed.archives.items())
        if stored.owner_uid == desired.owner_uid
    )
    return Plan(tuple(actions), notes=tuple(notes))
