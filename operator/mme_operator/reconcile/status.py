"""Status: conditions, phase and per-model fields computed from one reconcile pass (pure)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from mme_operator.api import (
    Condition,
    ConditionStatus,
    ConditionType,
    ModelEndpointStatus,
    ModelState,
    ModelStatus,
    Phase,
    Reason,
)
from mme_operator.api.status import (
    CapacityStatus,
    ModelCapacity,
    SupersededArchiveStatus,
    now_rfc3339,
    rfc3339,
)
from mme_operator.artifacts import StoredArchive
from mme_operator.artifacts.naming import DesiredArchive
from mme_operator.reconcile.apply import ApplyResult
from mme_operator.reconcile.desired import DesiredState
from mme_operator.reconcile.loading import LoadOutcome, LoadVerdict, checked_before
from mme_operator.reconcile.observe import ObservedState
from mme_operator.reconcile.plan import (
    ApplyScaling,
    CreateEndpoint,
    DeleteEndpoint,
    Plan,
    RemoveScaling,
    ServingPrevious,
    SupersededArchive,
    UpdateEndpoint,
    archive_conflicts,
    settle_superseded,
)
from mme_operator.reconcile.rollout import rolled_back_ready, rollout_status
from mme_operator.sagemaker.autoscaling import DesiredScaling, ObservedScaling
from mme_operator.sizing.choice import Sizing


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason | str,
    message: str,
    generation: int,
) -> list[Condition]:
    """Replace the condition of ``type_`` where it stands (a new one goes last), so the list
    keeps its order and a pass that changed nothing writes nothing; keep its transition time
    if its status is unchanged."""
    previous = next((c for c in conditions if c.type == type_), None)
    since = (
        previous.last_transition_time
        if previous is not None and previous.status == status and previous.last_transition_time
        else now_rfc3339()
    )
    updated = Condition(
        type=type_,
        status=status,
        reason=str(reason),
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def spec_is_valid(conditions: list[Condition], generation: int) -> list[Condition]:
    """``conditions`` with SpecValid True: the spec validated (whatever AWS said after)."""
    return set_condition(
        conditions,
        ConditionType.SPEC_VALID,
        ConditionStatus.TRUE,
        Reason.RECONCILED,
        "spec is valid",
        generation,
    )


def invalid_status(
    previous: ModelEndpointStatus | None, generation: int, problems: list[str]
) -> ModelEndpointStatus:
    """Status of a resource whose spec cannot be reconciled as written."""
    message = "; ".join(problems)
    conditions = list((previous.conditions if previous else None) or [])
    conditions = set_condition(
        conditions,
        ConditionType.SPEC_VALID,
        ConditionStatus.FALSE,
        Reason.INVALID_SPEC,
        message,
        generation,
    )
    conditions = set_condition(
        conditions,
        ConditionType.READY,
        ConditionStatus.FALSE,
        Reason.INVALID_SPEC,
        f"the spec is invalid; fix it and apply again: {message}",
        generation,
    )
    return _stopped_status(previous, generation, Phase.FAILED, conditions, message)


def policy_denied_status(
    previous: ModelEndpointStatus | None, generation: int, problems: list[str]
) -> ModelEndpointStatus:
    """Status of a spec the platform's tenancy policy refuses: Failed, nothing done in AWS."""
    message = "; ".join(problems)
    conditions = set_condition(
        list((previous.conditions if previous else None) or []),
        ConditionType.READY,
        ConditionStatus.FALSE,
        Reason.POLICY_DENIED,
        f"the platform's tenancy policy refuses this spec: {message}",
        generation,
    )
    return _stopped_status(previous, generation, Phase.FAILED, conditions, message)


def identity_changed_status(
    previous: ModelEndpointStatus, generation: int, changes: list[str]
) -> ModelEndpointStatus:
    """Status of a spec that moved the endpoint's identity (region, name, archive location).

    Nothing is done in AWS: acting on it would leave the old endpoint running and billing,
    owned by nobody. The status keeps the old identity, which deletion still cleans up.
    """
    message = (
        f"{'; '.join(changes)}: these cannot change after creation (the old endpoint and "
        "archives would be left behind); put the old values back, or delete this "
        "ModelEndpoint and create a new one"
    )
    conditions = set_condition(
        list(previous.conditions or []),
        ConditionType.SPEC_VALID,
        ConditionStatus.FALSE,
        Reason.IDENTITY_CHANGED,
        message,
        generation,
    )
    conditions = set_condition(
        conditions,
        ConditionType.READY,
        ConditionStatus.FALSE,
        Reason.IDENTITY_CHANGED,
        message,
        generation,
    )
    return _stopped_status(previous, generation, Phase.FAILED, conditions, message)


def bucket_missing_status(
    previous: ModelEndpointStatus | None, generation: int, bucket: str, retry_seconds: float
) -> ModelEndpointStatus:
    """Status while the artifacts bucket does not exist: the user can fix it, so not terminal.

    Nothing else is touched (no SageMaker resource without its archives); the reconcile comes
    back every ``retry_seconds`` and carries on by itself once the bucket exists.
    """
    message = (
        f"the S3 bucket {bucket!r} does not exist: create bucket {bucket} (in the endpoint's "
        f"region) or fix spec.artifacts.bucket; looking again every {retry_seconds:g}s"
    )
    conditions = list((previous.conditions if previous else None) or [])
    for type_ in (ConditionType.ARTIFACTS_SYNCED, ConditionType.READY):
        conditions = set_condition(
            conditions, type_, ConditionStatus.FALSE, Reason.BUCKET_MISSING, message, generation
        )
    return _stopped_status(previous, generation, Phase.PENDING, conditions, message)


def aws_failed_status(
    previous: ModelEndpointStatus | None,
    generation: int,
    reason: Reason,
    message: str,
    *,
    spec_valid: bool,
) -> ModelEndpointStatus:
    """Status of a pass stopped by a terminal AWS error before any plan (while observing).

    The spec is not at fault: ``SpecValid`` is True when the spec validated (it did, when
    the pass got as far as observing), else left as it was. ``reason`` is ``AccessDenied``
    or ``AwsError`` (:func:`mme_operator.reconcile.apply.terminal_reason`).
    """
    conditions = list((previous.conditions if previous else None) or [])
    if spec_valid:
        conditions = spec_is_valid(conditions, generation)
    conditions = set_condition(
        conditions, ConditionType.READY, ConditionStatus.FALSE, reason, message, generation
    )
    return _stopped_status(previous, generation, Phase.FAILED, conditions, message)


RETRIED_EVERY_DRIFT_INTERVAL: frozenset[str] = frozenset(
    {Reason.ACCESS_DENIED, Reason.AWS_ERROR, Reason.ENDPOINT_FAILED, Reason.POLICY_DENIED}
)
"""Reasons of a Failed ``Ready`` that the drift timer tries again; see :func:`retried_by_itself`."""


def retried_by_itself(status: ModelEndpointStatus | None) -> bool:
    """Whether a Failed resource is reconciled again without any change to it: the rule.

    Per reason of ``Ready``, for a resource whose phase is ``Failed``:

    - ``AccessDenied``, ``AwsError``: the cause is outside the resource (the operator's IAM
      role, a quota, a KMS key policy, the execution role's trust); whoever fixes it there
      changes nothing a watch sees. Tried again by the drift timer, once per drift interval,
      whether observing or a step of the apply failed.
    - ``EndpointFailed``: SageMaker's state, which its message says may be put right there
      (delete the failed endpoint to have it re-created); looked at every interval too.
    - ``PolicyDenied``: the tenancy policy; a nesting archive location stops refusing once
      the other ModelEndpoint is gone. Checked again every interval (no AWS call).
    - ``InvalidSpec``, ``IdentityChanged``, ``NotOwned``, ``UpdateFailed``: only the user's
      change of the resource (spec or annotation) helps, and that change is itself a pass.
      Not tried again.
    - ``SourceError``, ``ArtifactConflict``: failed models, which the drift check already
      looks at every interval (``check_drift``); not this rule's.
    - ``BucketMissing``, ``Retrying`` and the waits never reach it: their passes come back
      on their own delays (kopf retries the handler), with phase Pending / Syncing /
      Creating / Updating.

    The timer, not a kopf handler retry, so that a change still reconciles at once (kopf
    does not run a handler that sleeps through its retry delay again before the delay is
    over), and a retry that fails the same way writes nothing: no status, no annotation.
    """
    if status is None or status.phase != Phase.FAILED:
        return False
    ready = next((c for c in status.conditions or [] if c.type == ConditionType.READY), None)
    return ready is not None and ready.reason in RETRIED_EVERY_DRIFT_INTERVAL


def with_retry_note(status: ModelEndpointStatus, interval_seconds: float) -> ModelEndpointStatus:
    """``status``, its Ready message and ``message`` saying when it is tried again, if it is.

    The note is the same on every pass, so a retry that fails the same way changes nothing.
    """
    if not retried_by_itself(status):
        return status
    note = (
        f"; tried again every {interval_seconds:g}s, or at once on any change to the "
        "ModelEndpoint (an annotation will do)"
    )
    conditions = [
        c.model_copy(update={"message": c.message + note}) if c.type == ConditionType.READY else c
        for c in status.conditions or []
    ]
    return status.model_copy(
        update={"conditions": conditions, "message": (status.message or "") + note}
    )


def _stopped_status(
    previous: ModelEndpointStatus | None,
    generation: int,
    phase: Phase,
    conditions: list[Condition],
    message: str,
) -> ModelEndpointStatus:
    """The previous status with new conditions: a pass that stopped before any plan."""
    base = previous.model_copy() if previous else ModelEndpointStatus()
    return base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "conditions": conditions,
            "message": message,
        }
    )


def model_statuses(
    desired: DesiredState,
    observed: ObservedState,
    result: ApplyResult,
    previous: ModelEndpointStatus | None,
    unavailable: Mapping[str, str],
    superseded: Sequence[SupersededArchive] = (),
    serving: Mapping[str, ServingPrevious] | None = None,
) -> list[ModelStatus]:
    """Per-model status: TargetModel, key, sha256, state, warm-up, previous archive.

    A model in ``serving`` (its new archive is not in S3) reports the archive that still
    serves it, Available, with why the new one is missing: clients keep sending that one.
    """
    kept: dict[str, SupersededArchive] = {}
    for s in sorted(superseded, key=lambda s: s.expires_at):
        kept[s.model_name] = s  # the latest superseded archive of each model
    serving = serving or {}
    archives = {a.model_name: a for a in desired.archives}
    warmed_before = {
        m.target_model
        for m in (previous.models if previous and previous.models else [])
        if m.warmed_up
    }
    available_before = _available_before(previous)
    checked = checked_before(previous, desired.resource.metadata.generation)
    conflicts = archive_conflicts(desired, observed)
    out = []
    for model in desired.resource.spec.models:
        error = (
            unavailable.get(model.name)
            or conflicts.get(model.name)
            or result.model_errors.get(model.name)
        )
        archive = archives.get(model.name)
        old = kept.get(model.name)
        previous_fields = {
            "previous_target_model": old.target_model if old else None,
            "previous_s3_key": old.key if old else None,
            "previous_expires_at": rfc3339(old.expires_at) if old else None,
        }
        fallback = serving.get(model.name)
        if fallback is not None and (
            error is not None
            or not _replacement_in_s3(fallback, archive, result, observed, desired.owner_uid)
        ):
            stored = observed.archives.get(fallback.key)
            why = error or "it is not uploaded yet"
            out.append(
                ModelStatus(
                    name=model.name,
                    target_model=fallback.target_model,
                    s3_key=fallback.key,
                    sha256=stored.sha256 if stored else None,
                    etag=stored.etag if stored else None,
                    state=ModelState.AVAILABLE,
                    message=f"the new version is not in S3 ({why}); still serving "
                    f"{fallback.target_model}",
                    warmed_up=True
                    if model.warmup and fallback.target_model in warmed_before
                    else None,
                    **previous_fields,
                )
            )
            continue
        if error is not None or archive is None:
            out.append(
                ModelStatus(
                    name=model.name, state=ModelState.FAILED, message=error, **previous_fields
                )
            )
            continue
        warmed = archive.target_model in result.warmed or archive.target_model in warmed_before
        stored, loaded, message, state = _archive_state(
            desired, observed, result, archive, checked, available_before
        )
        # Its previous version serves until this one has loaded (see ServingPrevious).
        still = fallback if fallback is not None and state != ModelState.AVAILABLE else None
        if still is not None and state == ModelState.LOADING:
            message = f"not loaded yet; still serving {still.target_model}"
        out.append(
            ModelStatus(
                name=model.name,
                target_model=archive.target_model,
                s3_key=archive.key,
                sha256=stored.sha256 if stored else None,
                etag=stored.etag if stored else None,
                state=state,
                message=message if stored else None,
                loaded=loaded if stored else None,
                warmed_up=True if model.warmup and warmed else None,
                serving_target_model=still.target_model if still else None,
                serving_s3_key=still.key if still else None,
                **previous_fields,
            )
        )
    return out


def _available_before(previous: ModelEndpointStatus | None) -> set[str | None]:
    """The TargetModels the last pass reported Available."""
    return {
        m.target_model
        for m in (previous.models if previous and previous.models else [])
        if m.state == ModelState.AVAILABLE
    }


def _archive_state(
    desired: DesiredState,
    observed: ObservedState,
    result: ApplyResult,
    archive: DesiredArchive,
    checked: Mapping[str, ModelStatus],
    available_before: Collection[str | None],
) -> tuple[StoredArchive | None, bool | None, str | None, ModelState]:
    """(stored, loaded, why not, state) of a model's current archive after this pass."""
    stored = result.uploaded.get(archive.key) or observed.archives.get(archive.key)
    loaded, message = _load_state(
        result.loads.get(archive.model_name), checked.get(archive.target_model)
    )
    if stored is None:
        state = ModelState.PENDING
    elif loaded is False:
        state = ModelState.LOAD_FAILED
    elif loaded or not desired.load_check or archive.target_model in available_before:
        # Available once loaded; and stays so through a load check that did not get
        # an answer (an archive that was served before this check existed).
        state = ModelState.AVAILABLE
    else:
        state = ModelState.LOADING
    return stored, loaded, message, state


def _replacement_in_s3(
    fallback: ServingPrevious,
    archive: DesiredArchive | None,
    result: ApplyResult,
    observed: ObservedState,
    owner_uid: str,
) -> bool:
    """Whether the new archive of a model served from its previous one is in S3 (ours)."""
    if archive is None or fallback.replacement != archive.key:
        return False
    stored = result.uploaded.get(archive.key) or observed.archives.get(archive.key)
    return stored is not None and stored.owned_by(owner_uid)


def replaced_models(
    desired: DesiredState,
    observed: ObservedState,
    plan: Plan,
    result: ApplyResult,
    previous: ModelEndpointStatus | None,
    unavailable: Mapping[str, str],
) -> set[str]:
    """The models served from their previous archive whose new one serves after this pass:
    in S3, and loaded (Available)."""
    archives = {a.model_name: a for a in desired.archives}
    available_before = _available_before(previous)
    checked = checked_before(previous, desired.resource.metadata.generation)
    conflicts = archive_conflicts(desired, observed)
    replaced = set()
    for name, fallback in plan.serving_previous:
        archive = archives.get(name)
        if archive is None or archive.key != fallback.replacement:
            continue
        if name in unavailable or name in conflicts or name in result.model_errors:
            continue
        state = _archive_state(desired, observed, result, archive, checked, available_before)[3]
        if state == ModelState.AVAILABLE:
            replaced.add(name)
    return replaced


def _load_state(
    outcome: LoadOutcome | None, before: ModelStatus | None
) -> tuple[bool | None, str | None]:
    """(loaded, why not) of a TargetModel: this pass's load check, else the one recorded."""
    if outcome is not None and outcome.verdict is not LoadVerdict.UNKNOWN:
        loaded = outcome.verdict is LoadVerdict.LOADED
        return loaded, None if loaded else outcome.message
    if before is not None:
        return before.loaded, before.message if before.loaded is False else None
    return None, None


def _warm_condition(
    conditions: list[Condition],
    desired: DesiredState,
    models: list[ModelStatus],
    result: ApplyResult,
    generation: int,
    in_service: bool,
) -> list[Condition]:
    """ModelsWarm: whether every model loaded on the endpoint (with the load check on; else
    only the ``warmup: true`` ones are looked at), and each of those answered its warm-up.

    Absent when no model is checked (load check off and no ``warmup: true``). A model Triton
    cannot load is False/LoadFailed; an invocation that got no answer is False/WarmUpFailed
    and is tried again. The message agrees with ``EndpointReady`` (``in_service``: the
    endpoint runs the desired config): a model not loaded on an InService endpoint is loaded
    by the next pass.
    """
    wanted = [
        m
        for m in models
        if (desired.load_check or m.name in desired.warmup_models) and m.state != ModelState.FAILED
    ]
    unservable = sorted(
        m.name
        for m in models
        if (desired.load_check or m.name in desired.warmup_models) and m.state == ModelState.FAILED
    )
    if not wanted and not unservable:
        return [c for c in conditions if c.type != ConditionType.MODELS_WARM]
    broken = [m for m in wanted if m.state == ModelState.LOAD_FAILED]
    failed = {
        m.name: outcome.message
        for m in wanted
        if (outcome := result.loads.get(m.name)) is not None
        and outcome.verdict is LoadVerdict.UNKNOWN
    }
    cold = [
        m.name
        for m in wanted
        if m.name not in failed
        and (
            m.loaded is None
            if m.name not in desired.warmup_models
            else not m.warmed_up and m.loaded is not False
        )
    ]
    warmups = [m for m in wanted if m.name in desired.warmup_models]
    if broken:
        state = (ConditionStatus.FALSE, Reason.LOAD_FAILED, load_failed_message(broken))
    elif failed:
        state = (
            ConditionStatus.FALSE,
            Reason.WARM_UP_FAILED,
            "; ".join(f"warm-up of model {n!r} failed: {why}" for n, why in failed.items())
            + "; tried again later",
        )
    elif cold or unservable:
        name = desired.sagemaker.endpoint.name

        def verb(names: list[str]) -> str:
            return "warmed up" if set(names) <= desired.warmup_models else "loaded"

        parts = []
        if cold and in_service:
            parts.append(
                f"models {', '.join(cold)} not {verb(cold)} yet; endpoint {name} is InService, "
                "so the next pass checks them"
            )
        elif cold:
            parts.append(
                f"models {', '.join(cold)} are {verb(cold)} once endpoint {name} is InService"
            )
        if unservable:
            parts.append(
                f"models {', '.join(unservable)} cannot be {verb(unservable)}: they failed "
                "(status.models says why)"
            )
        state = (ConditionStatus.UNKNOWN, Reason.WARMING_UP, "; ".join(parts))
    elif warmups:
        state = (
            ConditionStatus.TRUE,
            Reason.WARMED_UP,
            f"{len(wanted)} models loaded; {len(warmups)} answered their warm-up invocation",
        )
    else:
        state = (ConditionStatus.TRUE, Reason.LOADED, f"{len(wanted)} models loaded")
    return set_condition(conditions, ConditionType.MODELS_WARM, *state, generation)


def load_failed_message(broken: Sequence[ModelStatus]) -> str:
    """What Triton said about each model it could not load, and what heals it."""
    return (
        "; ".join(
            f"model {m.name!r} ({m.target_model}) failed to load: {m.message}"
            + (f"; still serving {m.serving_target_model}" if m.serving_target_model else "")
            for m in broken
        )
        + "; fix the model's source (config.pbtxt, model files): its new archive is loaded "
        "and checked again"
    )


def describe_scaling(scaling: DesiredScaling) -> str:
    """The scaling as a person reads it: bounds and target."""
    return (
        f"min {scaling.min_capacity}, max {scaling.max_capacity} instances, target "
        f"{scaling.target_invocations_per_instance:g} invocations per instance per minute"
    )


def _registered_after(
    observed: ObservedScaling | None, desired: DesiredScaling | None, result: ApplyResult
) -> tuple[bool, DesiredScaling | None]:
    """Whether a scalable target is registered once this pass's scaling steps ran, and
    its bounds and policy (None without the operator's policy)."""
    present = observed is not None
    scaling = observed.as_desired() if observed is not None else None
    for action in result.done:
        if isinstance(action, RemoveScaling):
            present, scaling = False, None
        elif isinstance(action, ApplyScaling):
            present, scaling = True, desired
    return present, scaling


def autoscaling_condition(
    desired: DesiredState,
    observed: ObservedState,
    plan: Plan,
    result: ApplyResult,
    endpoint_status: str | None,
) -> tuple[ConditionStatus, Reason, str]:
    """``AutoscalingReady``: whether the variant's Application Auto Scaling is what the spec says.

    Set on every pass that observed the endpoint (its scaling is read with it, so this
    condition is never older than ``EndpointReady``). Without ``spec.autoscaling`` it is
    True (``Disabled``) once no scalable target is registered: the operator removes one it
    finds, and says so when it cannot. Scaling is registered only on an InService endpoint
    that runs the desired config; until then it is False (``WaitingForEndpoint``). Ready
    does not depend on it, except through a failed scaling step, which stops the pass like
    any failed AWS call.
    """
    wanted = desired.scaling
    name = desired.sagemaker.endpoint.name
    present, registered = _registered_after(observed.scaling, wanted, result)
    error = result.error
    if error is not None and isinstance(error.action, ApplyScaling | RemoveScaling):
        return ConditionStatus.FALSE, error.reason, error.message
    step = ApplyScaling if wanted is not None else RemoveScaling
    # A step planned but not run: an earlier step of the pass failed.
    skipped = any(isinstance(a, step) for a in plan.actions) and not any(
        isinstance(a, step) for a in result.done
    )
    now = f"now {endpoint_status or 'not created yet'}"
    if wanted is None:
        holds, verb = not present, "removed"
        held = (
            ConditionStatus.TRUE,
            Reason.DISABLED,
            "no spec.autoscaling; the instance count is spec.instanceCount "
            f"({desired.resource.spec.instance_count})",
        )
        waiting = (
            f"no spec.autoscaling: the scalable target registered on endpoint {name} is "
            f"removed once the endpoint is InService ({now})"
        )
    else:
        holds, verb = registered == wanted, "applied"
        held = (ConditionStatus.TRUE, Reason.CONFIGURED, describe_scaling(wanted))
        waiting = (
            f"{describe_scaling(wanted)}: applied once endpoint {name} is InService on config "
            f"{desired.sagemaker.endpoint_config.name} ({now})"
        )
    if holds:
        return held
    if error is not None and skipped:
        return ConditionStatus.FALSE, error.reason, f"autoscaling not {verb}: {error.message}"
    return ConditionStatus.FALSE, Reason.WAITING_FOR_ENDPOINT, waiting


def reconciled_status(
    desired: DesiredState,
    observed: ObservedState,
    plan: Plan,
    result: ApplyResult,
    previous: ModelEndpointStatus | None,
    unavailable: Mapping[str, str],
) -> ModelEndpointStatus:
    """The status after one observe / plan / apply pass."""
    generation = desired.resource.metadata.generation
    sm = desired.sagemaker
    replaced = replaced_models(desired, observed, plan, result, previous, unavailable)
    superseded, serving = settle_superseded(plan, result.uploaded.keys(), replaced)
    every = model_statuses(desired, observed, result, previous, unavailable, superseded, serving)
    # The endpoint's conditions follow its inline models only: an attached Model (kind
    # Model) that fails says so in its own status, never by failing the endpoint.
    models = [m for m in every if m.name not in desired.attached]
    conditions = list((previous.conditions if previous else None) or [])
    conditions = spec_is_valid(conditions, generation)

    # Artifacts.
    failed = [m for m in models if m.state == ModelState.FAILED]
    pending = [m for m in models if m.state == ModelState.PENDING]
    broken = [m for m in models if m.state == ModelState.LOAD_FAILED]
    loading = [m for m in models if m.state == ModelState.LOADING]
    conflicting = archive_conflicts(desired, observed)
    if failed:
        artifacts = (
            ConditionStatus.FALSE,
            Reason.ARTIFACT_CONFLICT
            if any(m.name in conflicting for m in failed)
            else Reason.SOURCE_ERROR,
            "; ".join(f"model {m.name!r}: {m.message}" for m in failed),
        )
    elif any(m.name in serving and not m.serving_target_model for m in models):
        artifacts = (
            ConditionStatus.FALSE,
            Reason.SERVING_PREVIOUS,
            "; ".join(
                f"model {m.name!r}: {m.message}"
                for m in models
                if m.name in serving and not m.serving_target_model
            ),
        )
    elif pending:
        artifacts = (
            ConditionStatus.FALSE,
            Reason.UPLOADING,
            f"{len(pending)} of {len(models)} model archives still to upload",
        )
    else:
        artifacts = (ConditionStatus.TRUE, Reason.SYNCED, f"{len(models)} model archives in S3")
    conditions = set_condition(conditions, ConditionType.ARTIFACTS_SYNCED, *artifacts, generation)

    # Endpoint: what it is now, as far as this pass knows.
    endpoint = observed.endpoint
    endpoint_status = endpoint.status if endpoint else None
    endpoint_arn = endpoint.arn if endpoint else (previous.endpoint_arn if previous else None)
    config_in_effect = endpoint.config_name if endpoint else None
    for action in result.done:
        if isinstance(action, CreateEndpoint):
            endpoint_status = "Creating"
            endpoint_arn = result.endpoint_arn or endpoint_arn
        elif isinstance(action, UpdateEndpoint):
            endpoint_status = "Updating"
        elif isinstance(action, DeleteEndpoint):
            endpoint_status = "Deleting"
    in_service = endpoint_status == "InService" and config_in_effect == sm.endpoint_config.name
    error = result.error
    if plan.blocked is not None:
        ep_cond = (ConditionStatus.FALSE, plan.blocked.reason, plan.blocked.message)
    elif error is not None and not in_service:
        ep_cond = (ConditionStatus.FALSE, error.reason, error.message)
    elif in_service:
        ep_cond = (
            ConditionStatus.TRUE,
            Reason.IN_SERVICE,
            f"endpoint {sm.endpoint.name} is InService",
        )
    elif plan.wait is not None:
        ep_cond = (ConditionStatus.FALSE, plan.wait.reason, plan.wait.message)
    else:
        ep_cond = (
            ConditionStatus.UNKNOWN,
            Reason.RETRYING,
            f"endpoint {sm.endpoint.name} is {endpoint_status}",
        )
    conditions = set_condition(conditions, ConditionType.ENDPOINT_READY, *ep_cond, generation)
    conditions = _warm_condition(conditions, desired, models, result, generation, in_service)
    scaling = autoscaling_condition(desired, observed, plan, result, endpoint_status)
    conditions = set_condition(conditions, ConditionType.AUTOSCALING_READY, *scaling, generation)

    # Ready summarises the others.
    if plan.blocked is not None and plan.blocked.reason == Reason.ROLLED_BACK and error is None:
        ready = rolled_back_ready(desired, observed, plan.blocked.message, len(models))
        phase = Phase.READY
    elif plan.blocked is not None:
        ready = (ConditionStatus.FALSE, plan.blocked.reason, plan.blocked.message)
        phase = Phase.FAILED
    elif error is not None:
        ready = (ConditionStatus.FALSE, error.reason, error.message)
        phase = Phase.SYNCING if error.retryable else Phase.FAILED
    elif failed:
        ready = artifacts
        phase = Phase.FAILED
    elif broken:
        ready = (ConditionStatus.FALSE, Reason.LOAD_FAILED, load_failed_message(broken))
        phase = Phase.FAILED
    elif plan.wait is not None or not in_service:
        reason = plan.wait.reason if plan.wait else Reason.RETRYING
        message = plan.wait.message if plan.wait else ep_cond[2]
        ready = (ConditionStatus.FALSE, reason, message)
        phase = Phase.UPDATING if endpoint_status == "Updating" else Phase.CREATING
    elif pending:
        ready = artifacts
        phase = Phase.SYNCING
    elif loading:
        warm = next(c for c in conditions if c.type == ConditionType.MODELS_WARM)
        ready = (ConditionStatus.FALSE, Reason(warm.reason), warm.message)
        phase = Phase.SYNCING
    else:
        ready = (
            ConditionStatus.TRUE,
            Reason.RECONCILED,
            f"{len(models)} models served by {sm.endpoint.name}"
            + (
                f"; {len(desired.attached)} attached Models (each one's status says whether "
                "it is Ready; status.attached counts them)"
                if desired.attached
                else ""
            ),
        )
        phase = Phase.READY
    conditions = set_condition(conditions, ConditionType.READY, *ready, generation)

    failed_config = plan.failed_config or (
        previous.failed_endpoint_config_name if previous and not plan.retry_token else None
    )
    retry_consumed = plan.retry_token or (previous.retry_update_consumed if previous else None)
    requested = result.requested_config or (
        previous.requested_endpoint_config_name if previous else None
    )
    notes = [*plan.notes, *result.notes]
    sizing = desired.sizing
    if sizing is not None:
        conditions = set_condition(conditions, *capacity_condition(sizing), generation)
    return ModelEndpointStatus(
        observed_generation=generation,
        phase=phase,
        conditions=conditions,
        endpoint_name=sm.endpoint.name,
        region=desired.resource.spec.region,
        artifacts_location=f"s3://{desired.bucket}/{desired.prefix}",
        endpoint_arn=endpoint_arn,
        endpoint_status=endpoint_status,
        endpoint_config_name=config_in_effect,
        requested_endpoint_config_name=requested,
        failed_endpoint_config_name=failed_config,
        retry_update_consumed=retry_consumed,
        rollout=rollout_status(
            observed,
            previous,
            started=next(
                (a.config_name for a in result.done if isinstance(a, UpdateEndpoint)), None
            ),
            failed_config=plan.failed_config,
            blocked_reason=plan.blocked.reason if plan.blocked else None,
        ),
        model_count=len(models),
        models=every,
        superseded_archives=[
            SupersededArchiveStatus(
                model=s.model_name,
                target_model=s.target_model,
                s3_key=s.key,
                expires_at=rfc3339(s.expires_at),
            )
            for s in superseded
        ]
        or None,
        message="; ".join([ready[2], *notes]),
        cache=previous.cache if previous else None,  # the metrics timer's (cache_signals.py)
        **(sizing_fields(sizing) if sizing is not None else {}),
    )


def capacity_condition(sizing: Sizing) -> tuple[ConditionType, ConditionStatus, Reason, str]:
    """``CapacityFits``: whether every model stays loaded, and what to change when not.

    Not a block: an MME whose models do not fit still serves, loading and evicting them
    in turn (slow first requests), so Ready does not depend on it.
    """
    where = f"{sizing.instance_type} ({sizing.headroom_percent}% headroom)"
    if sizing.fits:
        message = (
            f"models need {sizing.required_mib} MiB of GPU memory; {where} has "
            f"{sizing.available_mib} MiB"
        )
        return ConditionType.CAPACITY_FITS, ConditionStatus.TRUE, Reason.FITS, message
    message = (
        f"models need {sizing.required_mib} MiB of GPU memory but {where} has "
        f"{sizing.available_mib} MiB: {sizing.advice}"
    )
    return ConditionType.CAPACITY_FITS, ConditionStatus.FALSE, Reason.DOES_NOT_FIT, message


def sizing_fields(sizing: Sizing) -> dict[str, Any]:
    """The status fields sizing fills: instance type and why, capacity, estimated cost."""
    return {
        "instance_type": sizing.instance_type,
        "instance_type_reason": sizing.reason,
        "capacity": CapacityStatus(
            gpu_memory_required_mib=sizing.required_mib,
            gpu_memory_available_mib=sizing.available_mib,
            headroom_percent=sizing.headroom_percent,
            fits=sizing.fits,
            models=[
                ModelCapacity(name=n.name, gpu_memory_mib=n.required_mib, basis=n.basis)
                for n in sizing.needs
            ],
        ),
        "estimated_cost_per_hour": sizing.cost_per_hour,
    }
