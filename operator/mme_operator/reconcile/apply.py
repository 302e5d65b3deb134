"""Apply: execute one plan, step by step, idempotently.

Every step is safe to repeat: names are deterministic, "already exists" is a read, deletes
of something already gone succeed, and nothing is deleted without this owner's tag. The
first AWS error stops the run: retryable ones come back later, terminal ones become a
condition. A model whose source cannot be packaged fails alone; the others go on.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import botocore.exceptions

from mme_operator import metrics
from mme_operator.api import EventReason, ModelSpec, Reason
from mme_operator.artifacts import (
    ArchiveConfigError,
    ArtifactError,
    ArtifactStore,
    ModelSource,
    PreparedArchives,
    StoredArchive,
)
from mme_operator.artifacts import NotOwnedError as ArchiveNotOwnedError
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.desired import DesiredState
from mme_operator.reconcile.loading import (
    LoadOutcome,
    LoadVerdict,
    config_inputs,
    inputs_from_archive,
    judge_invocation,
    probe_request,
)
from mme_operator.sagemaker import apply_scaling, remove_scaling
from mme_operator.sagemaker.clients import AwsClients
from mme_operator.sagemaker.deployment import deployment_request
from mme_operator.sagemaker.errors import (
    ACCESS_DENIED_CODES,
    ErrorClass,
    classify,
    describe_error,
    error_code,
    is_missing_bucket,
)
from mme_operator.sagemaker.gateway import NotOwnedError, SageMakerGateway
from mme_operator.triton import TritonConfigError, parse_model_config

log = logging.getLogger("mme_operator.reconcile")

EventSink = Callable[[Reason | EventReason, str], None]
"""Called with (reason, message) for every AWS action taken; becomes a Kubernetes event
whose type (Warning or Normal) is the reason's in :data:`mme_operator.api.EVENT_TYPES`."""

SourceOpener = Callable[[str], ModelSource]


EVENT_MESSAGE_MAX = 1000
"""Kubernetes keeps an event's message short (the API server caps it at 1 KiB)."""


def config_merged_message(model_name: str, stored: StoredArchive) -> str:
    """The event saying which fields of a source's own config.pbtxt the spec overrode or added."""
    message = (
        f"model {model_name!r}: config.pbtxt is the source's with the spec's fields: "
        + "; ".join(stored.config_changes)
    )
    return (
        message if len(message) <= EVENT_MESSAGE_MAX else message[: EVENT_MESSAGE_MAX - 3] + "..."
    )


@dataclass(frozen=True)
class ApplyError:
    """Why an apply run stopped early."""

    retryable: bool
    reason: Reason
    message: str
    action: p.Action | None = None
    """The step that failed (the status tells a failed autoscaling step from the others)."""


@dataclass
class ApplyResult:
    """What an apply run did."""

    done: list[p.Action] = field(default_factory=list)
    uploaded: dict[str, StoredArchive] = field(default_factory=dict)
    model_errors: dict[str, str] = field(default_factory=dict)
    warmed: set[str] = field(default_factory=set)
    """TargetModels whose warm-up invocation reached the loaded model this pass."""
    loads: dict[str, LoadOutcome] = field(default_factory=dict)
    """Model name -> what its load check (or warm-up) showed this pass."""
    requested_config: str | None = None
    endpoint_arn: str | None = None
    notes: list[str] = field(default_factory=list)
    error: ApplyError | None = None


class Executor:
    """Runs the actions of a plan against AWS for one ModelEndpoint."""

    def __init__(
        self,
        clients: AwsClients,
        desired: DesiredState,
        *,
        open_source: SourceOpener,
        workdir: Path,
        emit: EventSink | None = None,
        gateway: SageMakerGateway | None = None,
        prepared: PreparedArchives | None = None,
        load_check_concurrency: int = 1,
        upload_workers: int = 1,
    ) -> None:
        self.clients = clients
        self.load_check_concurrency = load_check_concurrency
        self.upload_workers = upload_workers
        self.prepared = prepared
        self.desired = desired
        self.open_source = open_source
        self.workdir = workdir
        self.emit = emit or (lambda reason, message: None)
        self.gateway = gateway or clients.gateway()
        # By name: thousands of load checks (attached Models) look their model up.
        self._models = {m.name: m for m in desired.resource.spec.models}
        self.store = ArtifactStore(
            clients.s3,
            desired.bucket,
            desired.prefix,
            desired.owner_uid,
            kms_key_id=desired.resource.spec.artifacts.kms_key_id,
        )

    def run(self, plan: p.Plan) -> ApplyResult:
        """Execute ``plan.actions`` in order; stop at the first AWS error.

        The load checks (the plan's last steps, each its own TargetModel) run side by side,
        ``load_check_concurrency`` at a time: a cold load takes seconds to minutes, and
        one after the other they would hold the pass for the sum. Consecutive uploads run
        ``upload_workers`` at a time (each archive's name is its own: they cannot clash).
        """
        result = ApplyResult()
        checks = [a for a in plan.actions if isinstance(a, p.LoadCheck)]
        # Deletions that wait for a load check's answer run after the checks.
        after = [a for a in plan.actions if isinstance(a, p.DeleteArchive) and a.once_loaded]
        steps = [a for a in plan.actions if not isinstance(a, p.LoadCheck) and a not in after]
        if (
            checks
            and steps
            and self.upload_workers > 1
            and all(isinstance(a, p.UploadArchive) for a in steps)
        ):
            # Only uploads before the checks (new Models on a shared endpoint): nothing on
            # SageMaker's side must change first, so each model's check starts once its
            # archive is up instead of after the last upload.
            if not self._uploads_then_checks(steps, checks, result):
                return result
            steps, checks = [], []
        i = 0
        while i < len(steps):
            action = steps[i]
            if plan.upload_first and not result.uploaded and isinstance(action, p.BILLED_ACTIONS):
                result.error = nothing_uploaded(action, result)
                return result
            if isinstance(action, p.UploadArchive) and self.upload_workers > 1:
                uploads = list(
                    itertools.takewhile(lambda a: isinstance(a, p.UploadArchive), steps[i:])
                )
                i += len(uploads)
                if not self._uploads(uploads, result):
                    return result
                continue
            i += 1
            if not self._step(action, result):
                return result
        if checks:
            workers = max(1, min(self.load_check_concurrency, len(checks)))
            with ThreadPoolExecutor(workers, thread_name_prefix="load-check") as pool:
                list(pool.map(lambda check: self._load_check(check, result), checks))
            result.done.extend(checks)
        for action in after:
            if not self._step(action, result):
                return result
        return result

    def _uploads_then_checks(
        self, uploads: list[p.Action], checks: list[p.LoadCheck], result: ApplyResult
    ) -> bool:
        """Run ``uploads`` as :meth:`_uploads` does, each model's load checks as soon as its
        archive is up (the others' at once); False when an upload failed (the checks under
        way are waited for; those not begun are not run)."""
        emit = self.emit
        uploading = {a.archive.model_name for a in uploads if isinstance(a, p.UploadArchive)}
        waiting: dict[str, list[p.LoadCheck]] = {}
        for check in checks:
            waiting.setdefault(check.model_name, []).append(check)
        workers = max(1, min(self.load_check_concurrency, len(checks)))
        with ThreadPoolExecutor(workers, thread_name_prefix="load-check") as pool:
            started: list[p.LoadCheck] = []
            futures: list[Future[None]] = []

            def start(model: str) -> None:
                for check in waiting.get(model, []):
                    started.append(check)
                    futures.append(pool.submit(self._load_check, check, result, emit))

            for model in waiting.keys() - uploading:
                start(model)

            def uploaded(action: p.Action, part: ApplyResult) -> None:
                if not isinstance(action, p.UploadArchive) or part.error is not None:
                    return
                if action.archive.model_name not in part.model_errors:
                    start(action.archive.model_name)

            ok = self._uploads(uploads, result, then=uploaded)
            if not ok:
                for future in futures:
                    future.cancel()
            for future in futures:
                if not future.cancelled():
                    future.result()
        result.done.extend(c for c in started if c.model_name in result.loads)
        return ok

    def _uploads(
        self,
        uploads: list[p.Action],
        result: ApplyResult,
        then: Callable[[p.Action, ApplyResult], None] | None = None,
    ) -> bool:
        """Run ``uploads`` side by side, each into a result of its own, then take them in
        plan order: every archive that went up is recorded, and the first failure (in plan
        order) is the pass's error. False when one failed. ``then`` is told of each upload
        as it ends, with its own result."""
        parts = [ApplyResult() for _ in uploads]
        # Each upload's events are held, then told in plan order: the pass's event reads
        # the same whatever order the uploads ended in.
        told: list[list[tuple[Reason | EventReason, str]]] = [[] for _ in uploads]
        emit, local = self.emit, threading.local()

        def held(reason: Reason | EventReason, message: str) -> None:
            local.told.append((reason, message))

        def one(i: int) -> bool:
            local.told = told[i]
            done = self._step(uploads[i], parts[i])
            if then is not None:
                then(uploads[i], parts[i])
            return done

        workers = min(self.upload_workers, len(uploads))
        self.emit = held
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="upload") as pool:
                done = list(pool.map(one, range(len(uploads))))
        finally:
            self.emit = emit
        for events in told:
            for reason, message in events:
                emit(reason, message)
        for part in parts:
            result.uploaded.update(part.uploaded)
            result.model_errors.update(part.model_errors)
            result.done.extend(part.done)
            result.notes.extend(part.notes)
            if part.error is not None and result.error is None:
                result.error = part.error
        return all(done)

    def _step(self, action: p.Action, result: ApplyResult) -> bool:
        """Run one action; False when the run stops (``result.error`` says why)."""
        try:
            self._do(action, result)
        except (NotOwnedError, ArchiveNotOwnedError) as exc:
            # Never delete what is not ours: note it, and go on with the rest.
            result.notes.append(str(exc))
            log.warning("Skipped %s: %s", action.describe(), exc)
            return True
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            kind = classify(exc)
            retryable = kind is ErrorClass.RETRYABLE
            message = f"{action.describe()} failed: {describe_error(exc)}"
            reason = Reason.RETRYING if retryable else terminal_reason(exc)
            if is_missing_bucket(exc):
                # Deleted since the pass observed it: the user can create it again.
                retryable, reason = True, Reason.BUCKET_MISSING
            result.error = ApplyError(retryable, reason, message, action)
            log.warning("AWS call failed (%s): %s", kind, message)
            return False
        result.done.append(action)
        return True

    def _do(self, action: p.Action, result: ApplyResult) -> None:
        sm = self.desired.sagemaker
        owner = self.desired.owner_uid
        match action:
            case p.UploadArchive(archive=archive):
                try:
                    source = self.open_source(archive.source_uri)
                    # The plan uploads only keys the observation just listed as missing.
                    stored = self.store.upload(
                        archive, source, self.workdir, seen_missing=True, prepared=self.prepared
                    )
                except ArtifactError as exc:
                    result.model_errors[archive.model_name] = str(exc)
                    self.emit(Reason.SOURCE_ERROR, f"model {archive.model_name!r}: {exc}")
                    return
                result.uploaded[archive.key] = stored
                metrics.BYTES_UPLOADED.inc(stored.size)
                self.emit(
                    EventReason.UPLOADED,
                    f"uploaded model {archive.model_name!r} to s3://{self.desired.bucket}/{archive.key}",
                )
                if stored.config_changes:
                    self.emit(
                        EventReason.CONFIG_MERGED, config_merged_message(archive.model_name, stored)
                    )
            case p.DeleteArchive(key=key, once_uploaded=replacement, once_loaded=model):
                if replacement is not None and replacement not in result.uploaded:
                    return  # the replacement failed: the archive that serves stays
                loaded = result.loads.get(model) if model else None
                if model and (loaded is None or loaded.verdict is not LoadVerdict.LOADED):
                    return  # the replacement has not loaded: the archive that serves stays
                self.store.delete(key)
                self.emit(
                    EventReason.DELETED, f"deleted stale archive s3://{self.desired.bucket}/{key}"
                )
            case p.AdoptEndpoint(name=name, arn=arn):
                self.gateway.adopt_endpoint(name, arn, sm.endpoint.tags)
                self.emit(EventReason.ADOPTED, f"adopted existing endpoint {name}")
            case p.CreateModel(name=name):
                if self.gateway.create_model(sm.model).created:
                    self.emit(EventReason.CREATED, f"created SageMaker model {name}")
            case p.CreateEndpointConfig(name=name):
                if self.gateway.create_endpoint_config(sm.endpoint_config).created:
                    self.emit(EventReason.CREATED, f"created endpoint config {name}")
            case p.CreateEndpoint(name=name, config_name=config):
                result.requested_config = config
                created = self.gateway.create_endpoint(sm.endpoint)
                result.endpoint_arn = created.arn
                if created.created:
                    self.emit(EventReason.CREATED, f"creating endpoint {name} with config {config}")
            case p.UpdateEndpoint(
                name=name, config_name=config, from_config=old, retain_instance_count=retain
            ):
                result.requested_config = config
                self.gateway.update_endpoint(
                    name,
                    config,
                    owner,
                    retain_instance_count=retain,
                    deployment_config=deployment_request(
                        self.desired.resource.spec.deployment_config
                    ),
                )
                self.emit(EventReason.UPDATING, f"updating endpoint {name} from {old} to {config}")
            case p.DeleteEndpoint(name=name):
                if self.gateway.delete_endpoint(name, owner):
                    self.emit(Reason.DELETING, f"deleting endpoint {name}")
            case p.DeleteEndpointConfig(name=name):
                if self.gateway.delete_endpoint_config(name, owner):
                    self.emit(EventReason.DELETED, f"deleted endpoint config {name}")
            case p.DeleteModel(name=name):
                if self.gateway.delete_model(name, owner):
                    self.emit(EventReason.DELETED, f"deleted SageMaker model {name}")
            case p.ApplyScaling(endpoint_name=name):
                assert self.desired.scaling is not None
                apply_scaling(self.clients.autoscaling, name, self.desired.scaling)
                self.emit(EventReason.AUTOSCALING, f"applied autoscaling to endpoint {name}")
            case p.RemoveScaling(endpoint_name=name):
                remove_scaling(self.clients.autoscaling, name)
                self.emit(EventReason.AUTOSCALING, f"removed autoscaling from endpoint {name}")
            case p.LoadCheck():
                self._load_check(action, result)
            case _:  # pragma: no cover - the plan only makes the actions above
                raise TypeError(f"unknown action {action!r}")

    def _load_check(
        self, action: p.LoadCheck, result: ApplyResult, emit: EventSink | None = None
    ) -> None:
        """Invoke the model once, so that MME loads it, and judge the answer (:mod:`.loading`).

        One invocation, not one per instance: SageMaker routes a TargetModel to an instance
        that already has it loaded, and only spreads it to more instances when its traffic
        grows ("How multi-model endpoints work"). Further calls would land on the same
        instance; the first client request lands there too, and finds the model loaded.
        """
        tell = emit or self.emit
        name, target = action.model_name, action.target_model
        if name in result.model_errors:
            return  # its upload failed this pass: nothing new to load
        model = self._models[name]
        failure: BaseException | None = None
        try:
            body = self._probe_body(action, model)
            self.gateway.invoke(action.endpoint_name, target, body, "application/json")
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            ArchiveConfigError,
            TritonConfigError,
        ) as exc:
            failure = exc
        outcome = judge_invocation(failure)
        result.loads[name] = outcome
        what = "warm-up" if action.warm_up else "load check"
        if outcome.verdict is LoadVerdict.LOAD_FAILED:
            tell(
                Reason.LOAD_FAILED,
                f"model {name!r} ({target}) failed to load on the endpoint: {outcome.message}",
            )
        elif outcome.verdict is LoadVerdict.UNKNOWN:
            tell(
                Reason.WARM_UP_FAILED,
                f"{what} of model {name!r} ({target}) failed: {outcome.message}",
            )
        elif action.warm_up:
            result.warmed.add(target)
            tell(Reason.WARMED_UP, f"warmed up model {name!r} ({target})")
        else:
            tell(Reason.LOADED, f"model {name!r} ({target}) loaded on the endpoint")

    def _probe_body(self, action: p.LoadCheck, model: ModelSpec) -> bytes:
        """The load check's request. A warm-up of a model whose spec declares no inputs
        (they come from its source's own config.pbtxt) is generated from the config its
        archive carries: read back from S3 here, once per TargetModel (the check runs until
        it is answered), as the upload may have been passes or a restart ago."""
        inputs = None
        if inputs_from_archive(model, warm_up=action.warm_up):
            served = self.store.served_config(self.desired.prefix + action.target_model)
            inputs = config_inputs(parse_model_config(served))
        return probe_request(model, warm_up=action.warm_up, inputs=inputs)


def nothing_uploaded(action: p.Action, result: ApplyResult) -> ApplyError:
    """Why ``action`` is not run: every upload of the pass failed and nothing else is in S3,
    so an endpoint would bill for GPU instances with no model to serve."""
    failed = "; ".join(f"model {name!r}: {why}" for name, why in result.model_errors.items())
    return ApplyError(
        False,
        Reason.NO_SERVABLE_MODELS,
        f"no model can be served ({failed}): {action.describe()} is not done (nothing to "
        "bill for) until a model can be packaged; sources are looked at again at each drift "
        "check",
        action,
    )


def terminal_reason(exc: BaseException) -> Reason:
    """The reason of a terminal AWS error: AccessDenied when the operator's role lacks an
    action (or AWS does not recognise its credentials), AwsError for any other.

    One mapping for a failed step and for a failed observation, so both read the same.
    """
    code = error_code(exc) or ""
    if (
        code in ACCESS_DENIED_CODES
        or "AccessDenied" in code
        or code == "UnrecognizedClientException"
    ):
        return Reason.ACCESS_DENIED
    return Reason.AWS_ERROR
