"""One reconcile pass as a short story: parse, desire, observe, plan, apply, report.

Nothing here imports kopf. The handlers turn an :class:`Outcome` into a status patch and,
when ``retry_after`` is set, into a ``kopf.TemporaryError`` so that kopf comes back later
instead of any handler sleeping through a long AWS wait.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions

from mme_operator.api import (
    ConditionStatus,
    ConditionType,
    ModelEndpoint,
    ModelEndpointStatus,
    ModelState,
    Phase,
    Reason,
    validate_resource,
    with_recorded_endpoint_name,
)
from mme_operator.api.model import AttachedModelStatus
from mme_operator.api.spec import BeyondCapacity
from mme_operator.api.status import parse_rfc3339
from mme_operator.api.validation import Problem, previous_status
from mme_operator.artifacts import ArtifactError, ModelSource, PreparedArchives, open_source
from mme_operator.reconcile.apply import (
    ApplyResult,
    EventSink,
    Executor,
    SourceOpener,
    terminal_reason,
)
from mme_operator.reconcile.attach import AttachedInput, beyond_capacity, combined_previous
from mme_operator.reconcile.attached import (
    AttachedView,
    attached_view,
    split_attached,
    view_names,
)
from mme_operator.reconcile.attached import (
    with_attached as _with_attached,
)
from mme_operator.reconcile.desired import DesiredState, build_desired, render_configs
from mme_operator.reconcile.observe import observe, observe_for_deletion, recorded_archives
from mme_operator.reconcile.plan import (
    Plan,
    UploadArchive,
    archive_conflicts,
    plan_delete,
    plan_reconcile,
)
from mme_operator.reconcile.status import (
    aws_failed_status,
    bucket_missing_status,
    identity_changed_status,
    invalid_status,
    policy_denied_status,
    reconciled_status,
    retried_by_itself,
    set_condition,
    with_retry_note,
)
from mme_operator.sagemaker.clients import AwsClients
from mme_operator.sagemaker.errors import (
    ErrorClass,
    classify,
    describe_error,
    is_missing_bucket,
)
from mme_operator.sagemaker.gateway import SageMakerGateway
from mme_operator.sagemaker.images import ImageLookupError, image_problems
from mme_operator.settings import Settings
from mme_operator.sizing import CatalogueError, get_catalogue
from mme_operator.sizing.choice import capacity_mib, model_needs, size_endpoint
from mme_operator.tenancy import (
    ArchiveClaims,
    ArchiveLocation,
    TenancyPolicy,
    adoption_allowed,
    load_policy,
    policy_problems,
)
from mme_operator.triton import TritonConfigError, default_model_filename

log = logging.getLogger("mme_operator.reconcile")


@dataclass(frozen=True)
class Outcome:
    """The result of one pass: the status to write and when to come back (None: done)."""

    status: ModelEndpointStatus
    retry_after: float | None
    plan: Plan | None = None
    models: Mapping[str, AttachedModelStatus] = dataclasses.field(default_factory=dict)
    """The status of each Model (kind Model) naming this endpoint, by uid: what to write."""

    @property
    def summary(self) -> str:
        return self.status.message or ""


class Retry(Exception):
    """A retryable failure before any plan existed (e.g. S3 throttled while observing)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _sources(clients: AwsClients, settings: Settings) -> SourceOpener:
    def opener(uri: str) -> ModelSource:
        return open_source(
            uri, s3_client=clients.s3, settings=settings, file_roots=settings.file_root_list
        )

    return opener


def _prepare(
    body: Mapping[str, Any],
    clients: AwsClients,
    settings: Settings,
    prepared: PreparedArchives | None = None,
    view: AttachedView | None = None,
) -> tuple[ModelEndpoint, DesiredState, dict[str, str], AttachedView | None] | list[str]:
    """Parse and build the desired state; a list of problems when the spec is unusable.

    The view that comes back is ``view`` less the Models refused for capacity (an endpoint
    with ``spec.attach.beyondCapacity: Refuse``), which it lists as refused.

    With ``prepared``, a local source that naming reads in full is packaged meanwhile
    (:mod:`mme_operator.artifacts.prepared`), for the upload that likely follows.
    """
    resource, problems = _validate(body)
    if resource is None:
        return [str(p) for p in problems]
    problems = image_problems(resource.spec)
    if problems:
        return [str(p) for p in problems]
    try:
        configs = render_configs(resource)
    except TritonConfigError as exc:
        return [f"spec.models: {exc}"]
    opener = _sources(clients, settings)
    fingerprints: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    weights: dict[str, int | None] = {}
    inline = resource.spec.models
    if view is not None:
        resource = _with_attached(
            resource, view, opener, configs, fingerprints, weights, unavailable
        )
    for model in inline:
        try:
            source = opener(model.source)
            fingerprints[model.name] = (
                source.fingerprint()
                if prepared is None
                else prepared.name(
                    source,
                    model_name=model.name,
                    config_pbtxt=configs[model.name],
                    weights_filename=default_model_filename(model),
                )
            )
            # Known without downloading (S3 ContentLength, file size); sizing needs it.
            weights[model.name] = source.size_bytes()
        except ArtifactError as exc:
            unavailable[model.name] = str(exc)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            if classify(exc) is ErrorClass.RETRYABLE:
                raise Retry(
                    f"reading source of model {model.name!r}: {describe_error(exc)}"
                ) from exc
            unavailable[model.name] = f"cannot read {model.source}: {describe_error(exc)}"
    if view is not None and view.admitted:
        resource, view = _refuse_beyond_capacity(resource, view, weights, len(inline))
    try:
        sizing = size_endpoint(
            resource.spec,
            model_needs(resource.spec, weights),
            get_catalogue(),
            *_previous_choice(body),
        )
    except CatalogueError as exc:
        return [f"spec.instanceType: cannot read the instance catalogue: {exc}"]
    resource = with_instance_type(resource, sizing.instance_type)
    try:
        desired = build_desired(
            resource,
            fingerprints,
            configs,
            default_grace_period_seconds=settings.archive_grace_period_seconds,
            sizing=sizing,
            load_check=settings.load_check,
            adoption_allowed=adoption_allowed(
                resource, tenancy_policy(settings), settings.allow_endpoint_adoption
            ),
            archive_namespaces=view.namespaces if view is not None else frozenset(),
            attached=frozenset(view_names(view)),
        )
    except ImageLookupError as exc:
        return [
            f"spec.image: {exc} (set spec.image, or a supported spec.region / spec.tritonVersion)"
        ]
    return resource, desired, unavailable, view


def _refuse_beyond_capacity(
    resource: ModelEndpoint, view: AttachedView, weights: Mapping[str, int | None], inline: int
) -> tuple[ModelEndpoint, AttachedView]:
    """``resource`` (inline models first, then the admitted Models) and ``view`` less the
    newcomers its GPU memory cannot hold, when ``spec.attach.beyondCapacity`` is Refuse."""
    attach = resource.spec.attach
    if attach is None or attach.beyond_capacity != BeyondCapacity.REFUSE:
        return resource, view
    capacity = capacity_mib(resource.spec, get_catalogue())
    if capacity is None:
        return resource, view
    needs = {n.name: n.required_mib for n in model_needs(resource.spec, weights)}
    models = resource.spec.models
    refused = beyond_capacity(
        view.endpoint,
        *capacity,
        sum(needs[m.name] for m in models[:inline]),
        view.admitted,
        lambda model: needs[model.served_name],
    )
    if not refused:
        return resource, view
    names = {m.served_name for m in view.admitted if m.metadata.uid in refused}
    spec = resource.spec.model_copy(update={"models": [m for m in models if m.name not in names]})
    view = dataclasses.replace(
        view,
        admitted=tuple(m for m in view.admitted if m.metadata.uid not in refused),
        refused={
            **view.refused,
            **{
                m.metadata.uid: (m, refused[m.metadata.uid])
                for m in view.admitted
                if m.metadata.uid in refused
            },
        },
    )
    return resource.model_copy(update={"spec": spec}), view


def tenancy_policy(settings: Settings) -> TenancyPolicy:
    """The platform's tenancy policy (read once; ``run`` checked it at start)."""
    return load_policy(settings.tenancy_policy_file, settings.tenancy_open)


def with_instance_type(resource: ModelEndpoint, instance_type: str) -> ModelEndpoint:
    """``resource`` with ``spec.instanceType`` filled in (sizing's choice when it was unset)."""
    if resource.spec.instance_type == instance_type:
        return resource
    spec = resource.spec.model_copy(update={"instance_type": instance_type})
    return resource.model_copy(update={"spec": spec})


def _previous_choice(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The instance type in effect before and why: kept while the models fit on it."""
    previous = _previous_status(body)
    if previous is None:
        return None, None
    return previous.instance_type, previous.instance_type_reason


def _validate(body: Mapping[str, Any]) -> tuple[ModelEndpoint | None, list[Problem]]:
    """The resource as the user declared it; ``status`` is ours and read by _previous_status.

    A status someone else wrote (any JSON) must not make the spec look invalid, nor crash.
    An endpoint created under the legacy derived name keeps it (see
    :func:`~mme_operator.api.with_recorded_endpoint_name`).
    """
    resource, problems = validate_resource(
        {key: value for key, value in body.items() if key != "status"}
    )
    if resource is None:
        return None, problems
    previous = _previous_status(body)
    recorded = previous.endpoint_name if previous is not None else None
    return with_recorded_endpoint_name(resource, recorded), problems


def _previous_status(body: Mapping[str, Any]) -> ModelEndpointStatus | None:
    return previous_status(body.get("status"))


def _artifacts_location(resource: ModelEndpoint) -> str:
    return f"s3://{resource.spec.artifacts.bucket}/{resource.artifact_prefix}"


def identity_changes(resource: ModelEndpoint, previous: ModelEndpointStatus | None) -> list[str]:
    """What of the AWS identity the spec changed since the status recorded it.

    The CRD refuses these changes (transition rules); this catches them where the rules did
    not run: an API server or CRD without them, or an object written before them.
    """
    if previous is None:
        return []
    now = {
        "spec.region": (previous.region, resource.spec.region),
        "endpoint name": (previous.endpoint_name, resource.endpoint_name),
        "archive location": (previous.artifacts_location, _artifacts_location(resource)),
    }
    return [f"{what} {old} -> {new}" for what, (old, new) in now.items() if old and old != new]


def _as_recorded(resource: ModelEndpoint, previous: ModelEndpointStatus | None) -> ModelEndpoint:
    """The resource with the identity its status recorded: what deletion must clean up."""
    if previous is None or not identity_changes(resource, previous):
        return resource
    spec = resource.spec
    update: dict[str, Any] = {}
    if previous.region:
        update["region"] = previous.region
    if previous.endpoint_name:
        update["endpoint_name"] = previous.endpoint_name
    if previous.artifacts_location:
        bucket, _, prefix = previous.artifacts_location.removeprefix("s3://").partition("/")
        update["artifacts"] = spec.artifacts.model_copy(update={"bucket": bucket, "prefix": prefix})
    return resource.model_copy(update={"spec": spec.model_copy(update=update)})


def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 1)


def _retry_outcome(body: Mapping[str, Any], settings: Settings, message: str) -> Outcome:
    """The previous status with the retry's reason; a first pass also says Ready=False.

    A resource that was Ready stays so through a blip (throttling while observing).
    """
    previous = _previous_status(body) or ModelEndpointStatus()
    update: dict[str, Any] = {"message": f"retrying: {message}"}
    if not any(c.type == ConditionType.READY for c in previous.conditions or []):
        update["phase"] = previous.phase or Phase.PENDING
        update["conditions"] = set_condition(
            list(previous.conditions or []),
            ConditionType.READY,
            ConditionStatus.FALSE,
            Reason.RETRYING,
            f"retrying: {message}",
            _generation(body),
        )
    return Outcome(previous.model_copy(update=update), settings.retry_delay_seconds)


def reconcile(
    body: Mapping[str, Any],
    clients: AwsClients,
    settings: Settings,
    *,
    emit: EventSink | None = None,
    workdir: Path | None = None,
    others: Sequence[ArchiveLocation] = (),
    claims: ArchiveClaims | None = None,
    attached: AttachedInput | None = None,
) -> Outcome:
    """Bring AWS to what the ModelEndpoint ``body`` declares, as far as possible now.

    Packaging happens in ``workdir`` (default: a new directory under the settings' work
    dir), which the pass leaves as it found it. ``others``: the archive locations of the
    other ModelEndpoints the operator watches (the tenancy policy's nesting rules), and
    ``claims`` those it admitted (see :class:`ArchiveClaims`). ``attached``: the Models
    (kind Model) that name this endpoint; the admitted ones are served with the inline
    models, and :attr:`Outcome.models` has the status of each.
    """
    with (
        _workdir(workdir, settings) as scratch,
        # Half a largest source: with one upload's source and archive, the work dir's
        # sizing rule (2.5 x MME_MAX_SOURCE_BYTES) holds.
        PreparedArchives(scratch, limit_bytes=settings.max_source_bytes // 2) as prepared,
    ):
        return _reconcile(
            body, clients, settings, emit, scratch, prepared, others, claims, attached
        )


def _reconcile(
    body: Mapping[str, Any],
    clients: AwsClients,
    settings: Settings,
    emit: EventSink | None,
    scratch: Path,
    prepared: PreparedArchives,
    others: Sequence[ArchiveLocation] = (),
    claims: ArchiveClaims | None = None,
    attached: AttachedInput | None = None,
) -> Outcome:
    previous = _previous_status(body)
    resource, _ = _validate(body)
    changes = identity_changes(resource, previous) if resource is not None else []
    if changes:
        assert previous is not None
        return _settled(identity_changed_status(previous, _generation(body), changes), settings)
    denied = policy_problems(resource, tenancy_policy(settings), others, claims) if resource else []
    if denied:
        # Before any AWS call (sources included): nothing is read, written or touched.
        return _settled(policy_denied_status(previous, _generation(body), denied), settings)
    view = (
        attached_view(body, resource, attached, tenancy_policy(settings), others)
        if attached is not None and resource is not None
        else None
    )
    if view is not None:
        previous = combined_previous(previous, view.admitted, view.departed)
    bucket = None
    try:
        state = _prepare(body, clients, settings, prepared, view)
        if isinstance(state, list):
            return _settled(invalid_status(previous, _generation(body), state), settings)
        _, desired, unavailable, view = state
        bucket = desired.bucket
        gateway = clients.gateway(cache_reads=True)  # one pass: a read asked twice is reused
        known = recorded_archives(previous, desired.owner_uid)
        every_folder = attached is not None and attached.list_every_folder
        observed = observe(clients, desired, known, gateway, previous, every_folder)
    except Retry as exc:
        return _retry_outcome(body, settings, exc.message)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if classify(exc) is ErrorClass.RETRYABLE:
            return _retry_outcome(body, settings, describe_error(exc))
        if bucket is not None and is_missing_bucket(exc):
            delay = settings.retry_delay_seconds
            status = bucket_missing_status(previous, _generation(body), bucket, delay)
            return Outcome(status, delay)
        # The spec is fine (it validated); what AWS refused is the operator's to be granted.
        call = f"{exc.operation_name} " if isinstance(exc, botocore.exceptions.ClientError) else ""
        message = f"observing AWS: {call}failed: {describe_error(exc)}"
        log.warning("AWS call failed (%s): %s", classify(exc), message)
        status = aws_failed_status(
            previous,
            _generation(body),
            terminal_reason(exc),
            message,
            spec_valid=bucket is not None,
        )
        return _settled(status, settings)

    plan = plan_reconcile(desired, observed, previous, tuple(unavailable), now=datetime.now(UTC))
    # Archives of keys already in S3 go now, not at the end of the pass: disk is the limit.
    prepared.keep_only(
        {a.archive.target_model for a in plan.actions if isinstance(a, UploadArchive)}
    )
    result = _execute(plan, clients, desired, gateway, settings, emit, scratch, prepared)
    status = reconciled_status(desired, observed, plan, result, previous, unavailable)
    _tell_serving_previous(status, previous, emit)
    retry_after = _retry_after(plan, result, settings, status)
    models: dict[str, AttachedModelStatus] = {}
    if view is not None:
        status, models = split_attached(status, view)
    if retry_after is None:
        return dataclasses.replace(_settled(status, settings, plan), models=models)
    return Outcome(status, retry_after, plan, models)


def _tell_serving_previous(
    status: ModelEndpointStatus, previous: ModelEndpointStatus | None, emit: EventSink | None
) -> None:
    """A Warning event for each model newly served from its previous archive (its new version
    failed, to package or upload, or to load); once, not at every pass while it lasts."""
    if emit is None:
        return
    models = previous.models or [] if previous else []
    before = {(m.name, m.message) for m in models}
    unloaded = {(m.name, m.target_model) for m in models if m.state == ModelState.LOAD_FAILED}
    for model in status.models or []:
        telling = model.state == ModelState.AVAILABLE and model.message
        if telling and (model.name, model.message) not in before:
            emit(Reason.SERVING_PREVIOUS, f"model {model.name!r}: {model.message}")
        broken = model.state == ModelState.LOAD_FAILED and model.serving_target_model
        if broken and (model.name, model.target_model) not in unloaded:
            emit(
                Reason.SERVING_PREVIOUS,
                f"model {model.name!r}: its new version {model.target_model} failed to load; "
                f"still serving {model.serving_target_model}",
            )


def _settled(status: ModelEndpointStatus, settings: Settings, plan: Plan | None = None) -> Outcome:
    """A pass with nothing to come back for; a Failed one the drift timer may try again
    (:func:`retried_by_itself`), which its status says."""
    return Outcome(with_retry_note(status, settings.drift_check_interval_seconds), None, plan)


def failed_retry_due(body: Mapping[str, Any]) -> str | None:
    """Why the drift timer reconciles a Failed resource again (its Ready message), or None.

    No AWS call: the status alone says whether the failure was AWS's (the rule is
    :func:`retried_by_itself`), and the pass that follows observes everything anyway.
    """
    status = _previous_status(body)
    if not retried_by_itself(status):
        return None
    assert status is not None
    ready = next(c for c in status.conditions or [] if c.type == ConditionType.READY)
    return f"{ready.reason}: {ready.message}"


def _execute(
    plan: Plan,
    clients: AwsClients,
    desired: DesiredState,
    gateway: SageMakerGateway,
    settings: Settings,
    emit: EventSink | None,
    workdir: Path | None = None,
    prepared: PreparedArchives | None = None,
) -> ApplyResult:
    """Run ``plan`` with the pass's gateway (its reads are reused) in a scratch directory."""
    with _workdir(workdir, settings) as scratch:
        executor = Executor(
            clients,
            desired,
            open_source=_sources(clients, settings),
            workdir=scratch,
            emit=emit,
            gateway=gateway,
            prepared=prepared,
            load_check_concurrency=settings.load_check_concurrency,
            upload_workers=settings.upload_workers,
        )
        return executor.run(plan)


def _retry_after(
    plan: Plan, result: ApplyResult, settings: Settings, status: ModelEndpointStatus
) -> float | None:
    if result.error is not None:
        return settings.retry_delay_seconds if result.error.retryable else None
    if plan.wait is not None:
        return settings.poll_interval_seconds
    if any(m.state == ModelState.LOADING for m in status.models or []):
        # A load check got no answer (throttled, still loading): Ready waits for it.
        return settings.retry_delay_seconds
    return None


@contextlib.contextmanager
def _workdir(given: Path | None, settings: Settings) -> Iterator[Path]:
    """The scratch directory for packaging: the given one, else a fresh temp dir."""
    if given is not None:
        yield given
        return
    if settings.work_dir:
        Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mme-", dir=settings.work_dir) as scratch:
        yield Path(scratch)


def dry_run(body: Mapping[str, Any], clients: AwsClients, settings: Settings) -> Plan | list[str]:
    """The plan for ``body`` against the configured AWS, changing nothing."""
    resource, _ = _validate(body)
    denied = policy_problems(resource, tenancy_policy(settings)) if resource else []
    if denied:
        return [f"refused by the tenancy policy: {problem}" for problem in denied]
    prepared = _prepare(body, clients, settings)
    if isinstance(prepared, list):
        return prepared
    _, desired, unavailable, _ = prepared
    previous = _previous_status(body)
    observed = observe(
        clients, desired, recorded_archives(previous, desired.owner_uid), previous=previous
    )
    plan = plan_reconcile(desired, observed, previous, tuple(unavailable), now=datetime.now(UTC))
    notes = tuple(f"model {m!r} skipped: {why}" for m, why in unavailable.items())
    notes += tuple(
        f"model {m!r} conflicts: {why}" for m, why in archive_conflicts(desired, observed).items()
    )
    return dataclasses.replace(plan, notes=plan.notes + notes)


@dataclass(frozen=True)
class Deletion:
    """The result of one deletion pass: done, or come back after ``retry_after``."""

    done: bool
    retry_after: float | None
    message: str


def finalize(
    body: Mapping[str, Any],
    clients: AwsClients,
    settings: Settings,
    *,
    emit: EventSink | None = None,
) -> Deletion:
    """Remove what the ModelEndpoint owns (per ``deletionPolicy``); never anything else."""
    resource, _ = _validate(body)
    if resource is None:
        # Nothing valid was ever reconciled from this spec, so nothing of it can exist.
        return Deletion(True, None, "spec invalid; nothing to delete")
    resource = _as_recorded(resource, _previous_status(body))
    if resource.spec.deletion_policy == "Retain":
        return Deletion(True, None, "deletionPolicy is Retain: AWS resources and archives are kept")
    if resource.spec.instance_type is None:
        # Deletion finds what exists by name and ownership tags; the type plays no part.
        chosen = _previous_choice(body)[0] or get_catalogue().mme_types()[0].name
        resource = with_instance_type(resource, chosen)
    previous = _previous_status(body)
    # Attached Models' archives lie in their namespaces' folders: every folder is looked at.
    folders = frozenset({"*"}) if previous is not None and previous.attached else frozenset()
    try:
        desired = build_desired(resource, {}, configs={}, archive_namespaces=folders)
        known = recorded_archives(previous, desired.owner_uid)
        gateway = clients.gateway(cache_reads=True)
        observed = observe_for_deletion(clients, desired, known, gateway)
    except ImageLookupError:
        return Deletion(True, None, "no SageMaker resources could have been created for this spec")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return Deletion(False, settings.retry_delay_seconds, describe_error(exc))
    plan = plan_delete(desired, observed)
    result = _execute(plan, clients, desired, gateway, settings, emit)
    if result.error is not None:
        return Deletion(False, settings.retry_delay_seconds, result.error.message)
    if plan.wait is not None:
        return Deletion(False, settings.poll_interval_seconds, plan.wait.message)
    return Deletion(True, None, "; ".join(["deleted", *plan.notes, *result.notes]))


def check_drift(
    body: Mapping[str, Any],
    clients: AwsClients,
    now: datetime | None = None,
    attached_keys: Collection[str] = (),
) -> str | None:
    """What drifted since the last pass, or None; at most one DescribeEndpoint and one S3 list.

    ``attached_keys``: the S3 keys the endpoint's attached Models (kind Model) serve, from
    their status (the ModelEndpoint's own status only counts them); one listing of the
    whole prefix, every namespace's folder in it, finds a missing one.

    Only a resource that was Ready is checked; anything else is already being reconciled,
    except models whose source could not be read or that failed to load: those are looked at
    again on each tick (the user may have fixed the source since: a new archive, loaded and
    checked again; the same one is not invoked again); and a previous archive whose
    grace period ended is reason enough for a pass (which deletes it).
    """
    status = _previous_status(body)
    models = (status.models or []) if status else []
    failed = [m.name for m in models if m.state == ModelState.FAILED]
    if failed:
        return f"models {', '.join(failed)} were unavailable; looking at their sources again"
    broken = [m.name for m in models if m.state == ModelState.LOAD_FAILED]
    if status is not None and status.attached is not None and status.attached.failed:
        broken.append(f"{status.attached.failed} attached Models")
    if broken:
        return f"models {', '.join(broken)} failed to load; looking at their sources again"
    conditions = (status.conditions or []) if status else []
    warm = next((c for c in conditions if c.type == ConditionType.MODELS_WARM), None)
    if warm is not None and warm.status == ConditionStatus.FALSE:
        return "a warm-up failed at the last pass; warming up again"
    expired = _expired_archives(status, now or datetime.now(UTC))
    if expired:
        return f"grace period of previous archives ended: {', '.join(expired)}"
    if status is None or status.phase != "Ready" or not status.endpoint_name:
        return None
    location = _recorded_location(body, status)
    if location is None:
        return None
    bucket, prefix = location
    try:
        return _drift(clients, status, bucket, prefix, attached_keys)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if is_missing_bucket(exc):
            return f"the artifacts bucket {bucket} is gone"
        # Unknown is not drift: the next tick looks again.
        log.warning("Drift check of %s failed: %s", status.endpoint_name, describe_error(exc))
        return None


def _recorded_location(
    body: Mapping[str, Any], status: ModelEndpointStatus
) -> tuple[str, str] | None:
    """(bucket, prefix) of the archives the last pass recorded; None: an invalid spec.

    The status says where they are, so a drift check parses no spec (a third of its CPU,
    paid by every endpoint every interval); a status from before the field, the spec.
    """
    if status.artifacts_location:
        bucket, _, prefix = status.artifacts_location.removeprefix("s3://").partition("/")
        return bucket, prefix
    resource, _ = _validate(body)
    if resource is None:
        return None
    return resource.spec.artifacts.bucket, resource.artifact_prefix


def _drift(
    clients: AwsClients,
    status: ModelEndpointStatus,
    bucket: str,
    prefix: str,
    attached_keys: Collection[str],
) -> str | None:
    assert status.endpoint_name is not None
    endpoint = clients.gateway().describe_endpoint(status.endpoint_name)
    if endpoint is None:
        return f"endpoint {status.endpoint_name} is gone"
    if endpoint.status != "InService" or endpoint.config_name != status.endpoint_config_name:
        return f"endpoint {status.endpoint_name} is {endpoint.status} with config {endpoint.config_name}"
    wanted = {m.s3_key for m in status.models or [] if m.s3_key} | set(attached_keys)
    if wanted:
        present = _keys_under(clients, bucket, prefix)
        missing = sorted(wanted - present)
        if missing:
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            return f"archives missing from S3: {', '.join(missing[:10])}{more}"
    return None


def _expired_archives(status: ModelEndpointStatus | None, now: datetime) -> list[str]:
    """S3 keys of superseded archives whose grace period has ended by ``now`` (each its own)."""
    if status is None:
        return []
    kept = [(s.s3_key, s.expires_at) for s in status.superseded_archives or []]
    kept.extend(
        (m.previous_s3_key, m.previous_expires_at)
        for m in status.models or []
        if m.previous_s3_key and m.previous_expires_at
    )
    expired = []
    for key, at in kept:
        expires = parse_rfc3339(at)
        if (expires is None or expires <= now) and key not in expired:
            expired.append(key)
    return expired


def _keys_under(clients: AwsClients, bucket: str, prefix: str) -> set[str]:
    """The keys under an endpoint's prefix: one ListObjectsV2 per 1000 keys, no HEADs."""
    keys: set[str] = set()
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys
