"""kopf handlers: thin glue from Kubernetes events to one reconcile function each.

Create, update and resume call :func:`mme_operator.reconcile.reconcile`; a timer looks for
drift at the cost of one DescribeEndpoint and one S3 list, and tries again a resource that
failed on AWS's side (a missing permission, since granted); deletion runs through our own
finalizer and honours ``deletionPolicy``. Long AWS waits never block a handler: a pass that
has to wait raises ``kopf.TemporaryError`` with a delay and kopf comes back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import hashlib
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import kopf

from mme_operator import metrics
from mme_operator.api import (
    GROUP,
    PLURAL,
    VERSION,
    ConditionStatus,
    ConditionType,
    EventReason,
    EventType,
    ModelEndpointStatus,
    Phase,
    Reason,
    event_type,
)
from mme_operator.api.validation import previous_status
from mme_operator.attachments import ModelAttachments
from mme_operator.configmaps import ConfigMapNotOwnedError, ConfigMapWriter
from mme_operator.kube import KubeApiError, KubeLoginError
from mme_operator.reconcile import Outcome, check_drift, failed_retry_due, finalize, reconcile
from mme_operator.reconcile.apply import EventSink
from mme_operator.reconcile.client_mapping import configmap_name, models_configmap
from mme_operator.reconcile.desired import ADOPT_ANNOTATION, RETRY_UPDATE_ANNOTATION
from mme_operator.reconcile.drift_schedule import DriftSchedule, spread_offset
from mme_operator.reconcile.events import failure_events
from mme_operator.reconcile.fair_share import FairTurns, NamespaceShares
from mme_operator.reconcile.status import set_condition
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.sagemaker.stopping import OperatorStopping
from mme_operator.settings import Settings
from mme_operator.tenancy import ArchiveClaims, ArchiveLocation, archive_location

log = logging.getLogger("mme_operator.handlers")

T = TypeVar("T")

DOMAIN = "mme-operator.io"
FINALIZER = f"{DOMAIN}/finalizer"
DIGEST_ANNOTATION = f"{DOMAIN}/last-handled-digest"
# Our annotations that are the user's to set; every other one under DOMAIN is bookkeeping.
USER_ANNOTATIONS = frozenset({ADOPT_ANNOTATION, RETRY_UPDATE_ANNOTATION})


class DigestDiffBaseStorage(kopf.DiffBaseStorage):
    """Keeps a sha256 of the last handled spec instead of a copy of it.

    kopf's default stores the whole spec in an annotation, and all annotations of an
    object share a 256 KiB budget (``kubectl apply`` already spends one copy of the spec
    there): an endpoint with 500 models would not fit twice. Our handlers reconcile the
    whole spec every time and never read the diff, so a digest is enough: when it matches,
    the last handled essence *is* the current one; when not, an empty essence makes kopf
    see a change and call the update handler.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        annotations = essence.get("metadata", {}).get("annotations", {})
        for key in list(annotations):
            if key.startswith(f"{DOMAIN}/") and key not in USER_ANNOTATIONS:
                del annotations[key]
        self.remove_empty_stanzas(essence)
        return essence

    @staticmethod
    def digest(essence: kopf.BodyEssence) -> str:
        return hashlib.sha256(json.dumps(essence, sort_keys=True).encode()).hexdigest()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = body.metadata.annotations.get(DIGEST_ANNOTATION)
        if stored is None:
            return None
        essence = self.build(body=body)
        return essence if stored == self.digest(essence) else kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        digest = self.digest(essence)
        # Unchanged (a restart's resume of a handled spec): no write.
        if body.metadata.annotations.get(DIGEST_ANNOTATION) != digest:
            patch.metadata.annotations[DIGEST_ANNOTATION] = digest


class QuietTicks(logging.Filter):
    """kopf logs every timer tick that succeeded at INFO: 100 lines a second for 1,000
    endpoints at a 10 s drift interval, nearly all ticks that found nothing; and every
    Model event it handled (two per Model as 5,000 Models arrive: theirs and their status
    write's). DEBUG here; what a tick or a Model change did (a drift, a pass) is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        tick = message.startswith(_QUIET_HANDLERS) and message.endswith("' succeeded.")
        if record.levelno == logging.INFO and tick:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_QUIET_HANDLERS = ("Timer '", "Handler 'model_events'")


class WaitingIsNotAnError(logging.Filter):
    """kopf logs every TemporaryError at ERROR; ours mostly mean "waiting for SageMaker".

    Demoted to INFO, they neither alarm whoever reads the logs nor become Warning events.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and "failed temporarily" in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
            # The logger's level was checked before this filter ran: check it again.
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


@dataclass
class OperatorContext:
    """What every handler needs: settings and AWS clients per region (made once)."""

    settings: Settings
    make: Callable[[str, Settings], AwsClients] = make_clients
    configmaps: ConfigMapWriter | None = None
    """Writes each ModelEndpoint's ``<name>-models`` ConfigMap; None writes none."""
    _clients: dict[str, AwsClients] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _passing: set[str] = field(default_factory=set)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    shares: NamespaceShares | None = None
    """Each namespace's fair share of the workers (None: no limit, MME_NAMESPACE_FAIR_SHARE)."""
    claims: ArchiveClaims = field(default_factory=ArchiveClaims)
    """The archive locations admitted so far: which of two nesting ones keeps its place."""
    models: ModelAttachments | None = None
    """Models (kind Model) attached to the endpoints (attachments.py); None: none watched."""
    drift: DriftSchedule | None = None
    """When each endpoint was last observed: which drift ticks read AWS."""
    turns: FairTurns | None = None
    """Change passes waiting for their namespace's share, on the event loop."""
    executor: concurrent.futures.Executor | None = None
    """kopf's workers (its sync handlers' pool), once the operator has started."""
    drift_workers: concurrent.futures.ThreadPoolExecutor | None = None
    """The drift checks' own workers (``MME_DRIFT_CHECK_CONCURRENCY``), while running."""

    def __post_init__(self) -> None:
        if self.shares is None and self.settings.namespace_fair_share:
            self.shares = NamespaceShares(self.settings.max_concurrent_reconciles)
        if self.turns is None and self.shares is not None:
            self.turns = FairTurns(self.shares)
        if self.drift is None:
            self.drift = DriftSchedule(self.settings.drift_check_interval_seconds)

    @property
    def schedule(self) -> DriftSchedule:
        assert self.drift is not None
        return self.drift

    def slot(self, namespace: str) -> contextlib.AbstractContextManager[bool]:
        """A worker within ``namespace``'s fair share (see reconcile/fair_share.py)."""
        if self.shares is None:
            return contextlib.nullcontext(True)
        return self.shares.slot(namespace)

    async def in_worker(
        self,
        call: Callable[[], T],
        namespace: str | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> T:
        """``call()`` in one of kopf's workers (or ``executor``'s); with ``namespace``, once
        its turn has come.

        Waiting for the turn (:class:`FairTurns`) holds no worker and writes nothing: a
        refused pass tried again through kopf writes its retry to the object every time.
        """
        turns = self.turns if namespace is not None else None
        turn = (
            turns.turn(namespace) if turns is not None and namespace else contextlib.nullcontext()
        )
        async with turn:
            loop = asyncio.get_running_loop()
            run = functools.partial(contextvars.copy_context().run, call)  # kopf's context vars
            future = loop.run_in_executor(executor or self.executor, run)
            # As kopf runs its sync handlers: a cancelled pass ends with its thread, so no
            # thread outlives it holding a worker.
            cancelled: asyncio.CancelledError | None = None
            while not future.done():
                try:
                    await asyncio.shield(future)
                except asyncio.CancelledError as exc:
                    cancelled = exc
            if cancelled is not None:
                raise cancelled
            return future.result()

    def clients(self, region: str) -> AwsClients:
        with self._guard:
            if region not in self._clients:
                # make_clients counts every AWS call in the metrics (a botocore hook).
                self._clients[region] = self.make(region, self.settings)
            return self._clients[region]

    def lock(self, uid: str) -> threading.Lock:
        """One lock per object, so a drift check never overlaps a change handler."""
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    @contextlib.contextmanager
    def passing(self, uid: str) -> Iterator[None]:
        """Holds the object's lock for a reconcile or finalize pass, known to :meth:`in_pass`
        meanwhile (a cache signals read takes the lock too, but reads no archive)."""
        with self.lock(uid):
            with self._guard:
                self._passing.add(uid)
            try:
                yield
            finally:
                with self._guard:
                    self._passing.discard(uid)

    def in_pass(self, uid: str) -> bool:
        """Whether a pass of the object runs now (it observes AWS itself)."""
        with self._guard:
            return uid in self._passing


def _has_condition(body: kopf.Body, type_: ConditionType) -> bool:
    status = previous_status(body.get("status"))
    return any(c.type == type_ for c in (status.conditions or [] if status else []))


def with_configmap_condition(
    status: ModelEndpointStatus, refused: str | None
) -> ModelEndpointStatus:
    """``ConfigMapWritten=False/ConfigMapNotOwned`` while someone else's ConfigMap holds the
    name; no such condition otherwise."""
    conditions = [c for c in status.conditions or [] if c.type != ConditionType.CONFIG_MAP_WRITTEN]
    if refused is not None:
        conditions = set_condition(
            conditions,
            ConditionType.CONFIG_MAP_WRITTEN,
            ConditionStatus.FALSE,
            Reason.CONFIG_MAP_NOT_OWNED,
            refused,
            status.observed_generation or 1,
        )
    return status.model_copy(update={"conditions": conditions})


FAIR_SHARE_RETRY_SECONDS = 1.0
"""Delay before a pass refused by its namespace's fair share is tried again."""


def _without_nulls(value: Any) -> Any:
    """``value`` as the API server stores it: nulls of non-nullable fields are pruned."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _status_patch(current: Any, status: ModelEndpointStatus) -> dict[str, Any]:
    """The status fields that differ from the object's ``current`` status, as a merge patch.

    A top-level None removes a field that no longer applies. Lists replace what is stored
    whole, so their items carry no nulls (the server would prune them, and the next
    comparison would see a difference that is not one). Fields equal to what the object
    holds are left out: a pass that changed nothing (a restart, a drift check that found
    none) writes nothing.
    """
    new = status.model_dump(by_alias=True, mode="json")
    old = current if isinstance(current, Mapping) else {}
    return {
        key: _without_nulls(value) if isinstance(value, list) else value
        for key, value in new.items()
        if _without_nulls(old.get(key)) != _without_nulls(value)
    }


# What botocore accepts as a region name; anything else would make client creation raise.
_REGION_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DEFAULT_REGION = "us-east-1"


def _region(body: Mapping[str, Any]) -> str:
    """The region to make clients for; the default for any spec that names none usable.

    The API server (and the emulator more so) may hand over a spec that is a list, a string
    or null; the reconcile reports such a spec as invalid, so the clients only need to exist.
    The region recorded in the status wins: it is where the endpoint is, even when the spec
    was changed to another one past the CRD's rules (deletion must clean up there).
    """
    for part in ("status", "spec"):
        found = body.get(part)
        region = found.get("region") if isinstance(found, Mapping) else None
        if isinstance(region, str) and _REGION_NAME.match(region):
            return region
    return DEFAULT_REGION


def _post_event(body: kopf.Body, reason: str, message: str, warning: bool = False) -> None:
    # kopf.event, not kopf.info: info() obeys settings.posting.level, which is WARNING so
    # that log lines do not become events; our own events must be posted all the same.
    # The type (Warning for failures, Normal for progress) is the reason's, from one table.
    kopf.event(body, type=event_type(reason).value, reason=reason, message=message)


# Kubernetes keeps at most 1 KiB of an event's message.
_EVENT_MESSAGE_LIMIT = 1024
_EXAMPLES_PER_REASON = 3


@dataclass
class PassEvents:
    """What one reconcile pass did, told as Kubernetes events when the pass ends.

    The reconcile reports each step (an upload, a created resource); posting each as its
    own event would write one per model (1,262 events to create 100 endpoints of 10
    models). Each step is logged; the pass posts one event that counts them by reason, or
    two when some steps failed: a Warning for those (alerting watches Warning events) and a
    Normal one for the rest. Failures no step tells (:func:`failure_events`) join the
    Warning one.
    """

    body: kopf.Body
    steps: list[tuple[str, str]] = field(default_factory=list)
    headline: str | None = None
    """Ready's reason when it is False: the Warning event's reason when several failed."""

    def emit(self, reason: str, message: str) -> None:
        log.info("%s: %s", reason, message)
        self.steps.append((reason, message))

    def note_failures(self, previous: Any, status: ModelEndpointStatus) -> None:
        """Add the failures ``status`` newly reports that no step of the pass told."""
        told = {reason for reason, _ in self.steps}
        ready = next((c for c in status.conditions or [] if c.type == "Ready"), None)
        if ready is not None and ready.status == "False":
            self.headline = ready.reason
        for reason, message in failure_events(previous_status(previous), status, told):
            self.emit(reason, message)

    def summary(self, type_: EventType = EventType.NORMAL) -> tuple[str, str] | None:
        """(reason, message) of the pass's event of ``type_``; None when there is none."""
        steps = [(r, m) for r, m in self.steps if event_type(r) is type_]
        if not steps:
            return None
        by_reason: dict[str, list[str]] = {}
        for reason, message in steps:
            by_reason.setdefault(reason, []).append(message)
        parts = []
        for reason, messages in by_reason.items():
            shown = "; ".join(messages[:_EXAMPLES_PER_REASON])
            more = len(messages) - _EXAMPLES_PER_REASON
            if len(messages) == 1:
                parts.append(shown)
            else:
                parts.append(
                    f"{reason} x{len(messages)}: {shown}"
                    + (f"; and {more} more" if more > 0 else "")
                )
        several: str = EventReason.FAILED if type_ is EventType.WARNING else Reason.RECONCILED
        if type_ is EventType.WARNING and self.headline in by_reason:
            several = self.headline  # the failure that holds the endpoint back names it
        reason = next(iter(by_reason)) if len(by_reason) == 1 else several
        message = " | ".join(parts)
        if len(message) > _EVENT_MESSAGE_LIMIT:
            message = message[: _EVENT_MESSAGE_LIMIT - 3] + "..."
        return reason, message

    def post(self) -> None:
        """Post the pass's events (nothing when the pass did nothing)."""
        for type_ in (EventType.WARNING, EventType.NORMAL):
            summary = self.summary(type_)
            if summary is not None:
                _post_event(self.body, *summary)


def _pass_outcome(outcome: Outcome) -> str:
    """The ``outcome`` label of a reconcile pass's duration."""
    ready = next((c for c in outcome.status.conditions or [] if c.type == "Ready"), None)
    if ready is not None and ready.reason == "InvalidSpec":
        return "invalid"
    if outcome.retry_after is not None:
        return "retry"
    if outcome.status.phase == Phase.FAILED:
        return "error"
    return "success"


# A pass left the object in one of these phases only when it had to wait: kopf comes back
# with that pass (it raised TemporaryError), which reads everything a drift check would.
_WAITING_PHASES = frozenset({Phase.PENDING, Phase.SYNCING, Phase.CREATING, Phase.UPDATING})


def _pass_pending(body: kopf.Body) -> bool:
    """Whether a change pass is pending for the object (so a drift tick has nothing to do)."""
    status = body.get("status")
    return isinstance(status, Mapping) and status.get("phase") in _WAITING_PHASES


def _identity(body: kopf.Body) -> tuple[str, str, str]:
    """(uid, namespace, name): the key and labels of an endpoint's metrics."""
    meta = body.metadata
    return str(meta.uid), str(meta.namespace), str(meta.name)


def _cut_short_by_stop(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A pass the stopping operator cut short (:class:`OperatorStopping`) is taken up again
    1 s after the restart: one log line, no traceback, no 60 s wait kopf would persist."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def awaited(*args: Any, **kwargs: Any) -> None:
            try:
                await handler(*args, **kwargs)
            except OperatorStopping as exc:
                raise kopf.TemporaryError(str(exc), delay=1) from None

        return awaited

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> None:
        try:
            handler(*args, **kwargs)
        except OperatorStopping as exc:
            raise kopf.TemporaryError(str(exc), delay=1) from None

    return wrapped


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> kopf.OperatorRegistry:
    """Register the ModelEndpoint handlers, configured by ``context.settings``."""
    settings = context.settings
    resource = (GROUP, VERSION, PLURAL)
    kopf_objects = logging.getLogger("kopf.objects")
    for quieter in (WaitingIsNotAnError, QuietTicks):
        if not any(isinstance(f, quieter) for f in kopf_objects.filters):
            kopf_objects.addFilter(quieter())

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
        settings.persistence.diffbase_storage = DigestDiffBaseStorage()
        settings.posting.level = logging.WARNING  # our own events say what AWS did
        # Sync handlers run in kopf's thread pool; its default follows the node's CPUs
        # (min(32, CPUs + 4)), not the pod's limit nor the AWS connection pools.
        settings.execution.max_workers = context.settings.max_concurrent_reconciles
        context.executor = settings.execution.executor
        context.drift_workers = concurrent.futures.ThreadPoolExecutor(
            context.settings.drift_check_concurrency, thread_name_prefix="drift-check"
        )

    @kopf.on.cleanup(registry=registry)
    def release_drift_workers(**_: Any) -> None:
        if context.drift_workers is not None:
            context.drift_workers.shutdown(wait=False)
            context.drift_workers = None

    def write_models_configmap(
        body: kopf.Body, status: ModelEndpointStatus, logger: Any
    ) -> str | None:
        """Write the models ConfigMap; why it was refused (not ours), or None."""
        if context.configmaps is None:
            return None
        wanted = models_configmap(
            name=str(body.metadata.name),
            namespace=str(body.metadata.namespace),
            uid=str(body.metadata.uid),
            region=_region(body),
            status=status,
        )
        if wanted is None:
            return None
        try:
            context.configmaps.write(wanted)
        except ConfigMapNotOwnedError as exc:
            logger.warning(str(exc))
            if not _has_condition(body, ConditionType.CONFIG_MAP_WRITTEN):
                _post_event(body, Reason.CONFIG_MAP_NOT_OWNED, str(exc))
            return str(exc)
        except (KubeApiError, KubeLoginError) as exc:
            # Status has the same mapping; the next pass writes the ConfigMap again.
            name = wanted["metadata"]["name"]
            message = f"writing ConfigMap {name} failed: {exc}"
            logger.warning(message)
            _post_event(body, EventReason.CONFIGMAP_FAILED, message)
        return None

    def locked_pass(
        handler: str,
        body: kopf.Body,
        events: PassEvents,
        step: Callable[..., T],
        outcome_of: Callable[[T], str],
        note: Callable[[T], None] | None = None,
    ) -> T:
        """One timed pass of ``step`` (reconcile or finalize) under the object's lock; the
        pass's events (with what ``note`` adds from the result) are posted whatever happens."""
        with metrics.timed_pass(handler) as timer:
            try:
                with context.passing(str(body.metadata.uid)):
                    result = step(
                        body, context.clients(_region(body)), context.settings, emit=events.emit
                    )
                if note is not None:
                    note(result)
            finally:
                events.post()
            timer.outcome = outcome_of(result)
        return result

    def run_reconcile(
        body: kopf.Body,
        patch: kopf.Patch,
        logger: Any,
        locations: kopf.Index[str, ArchiveLocation],
        events: PassEvents | None = None,
        attached_models: kopf.Index[Any, Any] | None = None,
        *,
        turn_taken: bool = False,
        every_folder: bool = False,
    ) -> None:
        events = events or PassEvents(body)
        models = context.models
        namespace = str(body.metadata.namespace)
        # A change handler waited for its turn (context.in_worker); a drift tick asks here.
        slot = contextlib.nullcontext(True) if turn_taken else context.slot(namespace)
        with slot as granted:
            if not granted:
                # Over the namespace's share: give the worker back now, try again shortly.
                raise kopf.TemporaryError(
                    f"namespace {namespace} holds its share of the workers; trying again",
                    delay=FAIR_SHARE_RETRY_SECONDS,
                )
            # Every other ModelEndpoint's archive location: the tenancy policy's nesting rules.
            others = [loc for store in locations.values() for loc in store]

            def attached_pass(
                body: kopf.Body, clients: AwsClients, settings: Settings, emit: EventSink
            ) -> Outcome:
                # Under the object's lock, both: a pass that waited for the last one sees
                # the Model statuses it wrote (not an input taken before it), so it neither
                # HEADs nor load-checks again what that pass uploaded and checked.
                attached = models.input_for(body, attached_models) if models else None
                if attached is not None and every_folder:
                    attached = replace(attached, list_every_folder=True)
                outcome = reconcile(
                    body, clients, settings, emit=emit, others=others,
                    claims=context.claims, attached=attached,
                )  # fmt: skip
                if models is not None:
                    models.write(outcome.models)
                return outcome

            outcome = locked_pass(
                "reconcile",
                body,
                events,
                attached_pass,
                _pass_outcome,
                note=lambda done: events.note_failures(body.get("status"), done.status),
            )
        # The pass read the endpoint and the listing: the next drift tick reuses that.
        context.schedule.observed(str(body.metadata.uid))
        metrics.ENDPOINTS.record(*_identity(body), outcome.status)
        refused = write_models_configmap(body, outcome.status, logger)
        status = with_configmap_condition(outcome.status, refused)
        patch.status.update(_status_patch(body.get("status"), status))
        if outcome.plan is not None:
            for line in outcome.plan.describe():
                logger.debug("Plan: %s", line)
        logger.info("Reconciled: phase=%s %s", outcome.status.phase, outcome.summary)
        if outcome.retry_after is not None:
            raise kopf.TemporaryError(outcome.summary, delay=outcome.retry_after)

    @kopf.index(*resource, registry=registry, id="archive_locations")
    def archive_locations(body: kopf.Body, **_: Any) -> dict[str, ArchiveLocation] | None:
        # kopf fills every index from the initial listing before any handler runs, so at a
        # restart each pass already sees every older ModelEndpoint's location.
        location = archive_location(body)
        return None if location is None else {location.bucket: location}

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, registry=registry)
    @_cut_short_by_stop
    async def reconcile_handler(
        body: kopf.Body,
        patch: kopf.Patch,
        logger: Any,
        archive_locations: kopf.Index[str, ArchiveLocation],
        attached_models: kopf.Index[Any, Any] | None = None,
        **_: Any,
    ) -> None:
        # Async only to wait for the namespace's turn off the workers; the pass runs in one.
        await context.in_worker(
            functools.partial(
                run_reconcile,
                body,
                patch,
                logger,
                archive_locations,
                attached_models=attached_models,
                turn_taken=True,
            ),
            str(body.metadata.namespace),
        )

    # Sharp: one tick per interval, however long the worker queue made the last one wait
    # (kopf's default sleeps an interval after each tick: ticks fall behind under load).
    # The first tick of each object has its own offset (see reconcile/drift_schedule.py).
    @kopf.timer(
        *resource,
        registry=registry,
        interval=settings.drift_check_interval_seconds,
        initial_delay=lambda body, **_: context.schedule.first_delay(str(body.metadata.uid)),
        idle=settings.drift_check_interval_seconds,
        sharp=True,
    )
    @_cut_short_by_stop
    async def drift_timer(
        body: kopf.Body,
        patch: kopf.Patch,
        logger: Any,
        archive_locations: kopf.Index[str, ArchiveLocation],
        retry: int = 0,
        attached_models: kopf.Index[Any, Any] | None = None,
        **_: Any,
    ) -> None:
        # Decided here, on the event loop: a tick with nothing to read takes no worker
        # (1,000 endpoints tick 100 times a second at a 10 s interval). Not due: no pass of
        # this process has read the endpoint yet, or one read it less than half an
        # interval ago (a restart's resume pass, a change); what it saw stands for this tick.
        # Nor while a pass runs: it reads what the check would (a shared endpoint's first
        # passes over thousands of Models take longer than an interval; a check then would
        # list every archive, every interval, for nothing), and marks the endpoint observed.
        uid = str(body.metadata.uid)
        if retry == 0 and (
            _pass_pending(body) or context.in_pass(uid) or not context.schedule.due(uid)
        ):
            return
        # In the drift checks' own workers: a check neither waits behind reconcile passes
        # (its tick would slip past the interval) nor holds one of their workers.
        await context.in_worker(
            functools.partial(
                drift_pass, body, patch, logger, archive_locations, retry, attached_models
            ),
            executor=context.drift_workers,
        )

    def drift_pass(
        body: kopf.Body,
        patch: kopf.Patch,
        logger: Any,
        archive_locations: kopf.Index[str, ArchiveLocation],
        retry: int,
        attached_models: kopf.Index[Any, Any] | None,
    ) -> None:
        reconcile_pass = functools.partial(run_reconcile, attached_models=attached_models)
        # retry > 0: kopf calls again a pass this timer started that had to wait (e.g. the
        # endpoint it re-created is Creating). check_drift skips anything not Ready, and no
        # change handler is retrying, so only carrying on here brings the resource back.
        if retry == 0:
            uid = str(body.metadata.uid)
            failed = failed_retry_due(body)
            if failed is not None:
                # Failed on AWS's side (e.g. a permission since granted): one pass per
                # interval. No event of its own: one that fails again the same way tells
                # nothing new, and writes nothing.
                logger.info("Trying again after %s", failed)
                reconcile_pass(body, patch, logger, archive_locations)
                return
            admission = (
                context.models.admission_changed(body, attached_models) if context.models else None
            )
            if admission is not None:
                # A namespace labelled (or unlabelled) since: no AWS call to find out.
                logger.info("Attachments changed: %s; reconciling", admission)
                reconcile_pass(body, patch, logger, archive_locations)
                return
            with metrics.timed_pass("drift_check") as timer:
                attached = (
                    context.models.archive_keys(body, attached_models) if context.models else ()
                )
                drift = check_drift(body, context.clients(_region(body)), attached_keys=attached)
                timer.outcome = "success"
            context.schedule.observed(uid)
            if drift is None:
                # A ConfigMap write that failed is made again here (no API call when the
                # last one succeeded: the writer remembers what it wrote).
                current = previous_status(body.get("status"))
                if current is not None:
                    write_models_configmap(body, current, logger)
                return
            logger.info("Drift detected: %s; reconciling", drift)
            events = PassEvents(body)
            events.emit(EventReason.DRIFT_DETECTED, drift)
            # What drifted may be an archive the status records: this pass trusts no folder.
            reconcile_pass(body, patch, logger, archive_locations, events, every_folder=True)
            return
        reconcile_pass(body, patch, logger, archive_locations)

    if settings.metrics_interval_seconds > 0:
        register_cache_signals(registry, context)
    if context.models is not None:
        context.models.register(registry)

    @kopf.on.delete(*resource, registry=registry)
    @_cut_short_by_stop
    def delete_handler(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
        deletion = locked_pass(
            "delete", body, PassEvents(body), finalize, lambda d: "success" if d.done else "retry"
        )
        logger.info("Deletion: %s", deletion.message)
        if deletion.done and context.configmaps is not None:
            # The garbage collector deletes the ConfigMap with its owner.
            context.configmaps.forget(
                str(body.metadata.namespace), configmap_name(str(body.metadata.name))
            )
        if deletion.done and context.models is not None:
            context.models.endpoint_gone(
                str(body.metadata.namespace), str(body.metadata.name), str(body.metadata.uid)
            )
        if deletion.done:
            metrics.ENDPOINTS.forget(str(body.metadata.uid))
            metrics.CACHE.forget(str(body.metadata.uid))
            context.schedule.forget(str(body.metadata.uid))
        else:
            metrics.ENDPOINTS.set_phase(*_identity(body), Phase.DELETING)
        if not deletion.done:
            patch.status["phase"] = Phase.DELETING.value
            patch.status["message"] = deletion.message
            raise kopf.TemporaryError(deletion.message, delay=deletion.retry_after or 10)

    @kopf.on.event(*resource, registry=registry, when=lambda type, **_: type == "DELETED")
    async def forget_deleted(body: kopf.Body, **_: Any) -> None:
        # Also an object whose finalizer someone removed, or deleted before it had ours:
        # its series go with it, so they are bounded by the live objects.
        metrics.ENDPOINTS.forget(str(body.metadata.uid))
        metrics.CACHE.forget(str(body.metadata.uid))
        context.schedule.forget(str(body.metadata.uid))

    return registry


def register_cache_signals(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """The metrics timer: one GetMetricData per Ready endpoint per metrics interval, for
    ``status.cache`` and ``CacheHealthy`` (reconcile/cache_signals.py); apart from the
    drift timer, so the drift checks' AWS reads stay what they were."""
    from mme_operator.reconcile.cache_signals import cache_event, nothing_new, observe_cache
    from mme_operator.sagemaker.metrics_read import (
        CacheMetrics,
        CloudWatchClients,
        read_cache_metrics,
    )
    from mme_operator.sizing import get_catalogue

    settings = context.settings
    interval = settings.metrics_interval_seconds
    cloudwatch = CloudWatchClients(settings)

    def read(region: str, endpoint: str, start: datetime, end: datetime) -> CacheMetrics:
        return read_cache_metrics(cloudwatch(region), endpoint, start, end)

    # Spread over the interval like the drift ticks, and run in the same workers of their
    # own: at 1,000 endpoints slow metrics reads held all of the reconciles' workers.
    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        interval=interval,
        initial_delay=lambda body, **_: interval + spread_offset(str(body.metadata.uid), interval),
    )
    @_cut_short_by_stop
    async def cache_signals_timer(
        body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any
    ) -> None:
        await context.in_worker(
            functools.partial(cache_signals_pass, body, patch, logger),
            executor=context.drift_workers,
        )

    def cache_signals_pass(body: kopf.Body, patch: kopf.Patch, logger: Any) -> None:
        lock = context.lock(str(body.metadata.uid))
        current = body.get("status", {}).get("observedGeneration") == body.metadata.get(
            "generation"
        )
        # The patch carries the whole conditions list: while a pass is running (or a change
        # waits for one), its conditions are newer than this body's, so this interval is
        # skipped rather than written over them; the next one reads again.
        if not current or not lock.acquire(blocking=False):
            logger.debug("Cache metrics not read: a reconcile pass is due or running")
            return
        with metrics.timed_pass("cache_signals") as timer:
            try:
                status = observe_cache(body, read, settings, get_catalogue())
            finally:
                lock.release()
            failed = status is not None and any(
                c.type == ConditionType.CACHE_HEALTHY and c.reason == Reason.METRICS_UNAVAILABLE
                for c in status.conditions or []
            )
            timer.outcome = "error" if failed else "success"
        if status is None:
            return
        metrics.CACHE.record(*_identity(body), status)
        before = previous_status(body.get("status"))
        if nothing_new(before, status):
            return
        event = cache_event(before, status)
        if event is not None:
            _post_event(body, *event)
        patch.status.update(_status_patch(body.get("status"), status))
