"""Prometheus metrics of the operator, on one registry of their own.

The metric objects are module-level, so any layer can count without passing them around;
they live on :data:`REGISTRY` rather than prometheus_client's global registry, so the
metrics endpoint shows exactly the operator's metrics. Names follow Prometheus's
conventions (``mme_operator_`` prefix, base units, ``_total`` on counters); every label
value comes from a fixed set or from the operator's live objects, so the number of series
stays bounded.

- Passes: :func:`timed_pass` observes each handler's wall time in
  ``mme_operator_reconcile_duration_seconds{handler, outcome}`` and counts it in
  ``mme_operator_reconciles_in_flight{handler}`` while it runs.
- Endpoints: :data:`ENDPOINTS` holds each live ModelEndpoint's phase and model counts,
  read when Prometheus scrapes; :meth:`EndpointMetrics.forget` drops its series.
- AWS: :func:`instrument_session` hooks botocore's events of a session, so every call of
  every client made from it is counted, per call (``mme_operator_aws_calls_total``) and
  per HTTP request, retries included (``mme_operator_aws_requests_total``).

Nothing here makes an AWS or Kubernetes call: the metrics are what the passes already saw.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mme_operator.api.status import ModelEndpointStatus, ModelState, Phase

REGISTRY = CollectorRegistry(auto_describe=True)

# What each handler's pass can end with; the duration histogram has one series per pair.
PASS_OUTCOMES: Mapping[str, tuple[str, ...]] = {
    # success: done for now; retry: comes back later (waiting on SageMaker, a retryable
    # error); error: phase Failed, or the pass raised (kopf retries it); invalid: bad spec.
    "reconcile": ("success", "retry", "error", "invalid"),
    # success: the check ran (a drift found is then reconciled in a pass of its own).
    "drift_check": ("success", "error"),
    # success: deleted (or retained); retry: waiting for SageMaker to delete.
    "delete": ("success", "retry", "error"),
    # success: the cache metrics were read (or nothing was due); error: the read failed.
    "cache_signals": ("success", "error"),
}

RECONCILE_DURATION = Histogram(
    "mme_operator_reconcile_duration_seconds",
    "Wall time of one handler pass (packaging and upload included), by handler "
    "(reconcile, drift_check, delete, cache_signals) and outcome (success, retry, error, "
    "invalid).",
    ["handler", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
RECONCILES_IN_FLIGHT = Gauge(
    "mme_operator_reconciles_in_flight",
    "Handler passes running now (waiting for the object's lock included), by handler.",
    ["handler"],
    registry=REGISTRY,
)
AWS_CALLS = Counter(
    "mme_operator_aws_calls",
    "AWS API calls as the operator made them (botocore's retries inside one call), by "
    "service, operation and the error code of the final answer (empty on success).",
    ["service", "operation", "error_code"],
    registry=REGISTRY,
)
AWS_REQUESTS = Counter(
    "mme_operator_aws_requests",
    "HTTP requests sent to AWS, each retry its own, by service, operation and error code "
    "(empty on success): throttling that botocore's retries hid shows here.",
    ["service", "operation", "error_code"],
    registry=REGISTRY,
)
BYTES_UPLOADED = Counter(
    "mme_operator_uploaded_bytes",
    "Bytes of model archives uploaded to S3.",
    registry=REGISTRY,
)

# Every label value exists from the start, so dashboards and rate() see zeros, not gaps.
for _handler, _outcomes in PASS_OUTCOMES.items():
    RECONCILES_IN_FLIGHT.labels(handler=_handler)
    for _outcome in _outcomes:
        RECONCILE_DURATION.labels(handler=_handler, outcome=_outcome)


def record_pass(handler: str, outcome: str, duration_seconds: float) -> None:
    """Observe one finished pass of ``handler`` and its duration."""
    outcomes = PASS_OUTCOMES.get(handler)
    if outcomes is None:
        raise ValueError(f"unknown handler {handler!r}; expected one of {tuple(PASS_OUTCOMES)}")
    if outcome not in outcomes:
        raise ValueError(
            f"unknown outcome {outcome!r} of a {handler} pass; expected one of {outcomes}"
        )
    RECONCILE_DURATION.labels(handler=handler, outcome=outcome).observe(duration_seconds)


@dataclass
class PassTimer:
    """The outcome of the pass being timed; set it before the block ends."""

    handler: str
    outcome: str | None = None


@contextmanager
def timed_pass(handler: str) -> Iterator[PassTimer]:
    """Count a pass of ``handler`` in flight while the block runs, then observe its duration.

    The block sets ``timer.outcome``; a block that raises (or sets none) counts as ``error``.
    """
    timer = PassTimer(handler)
    gauge = RECONCILES_IN_FLIGHT.labels(handler=handler)
    gauge.inc()
    started = time.monotonic()
    try:
        yield timer
    finally:
        gauge.dec()
        record_pass(handler, timer.outcome or "error", time.monotonic() - started)


# --- per-endpoint series -------------------------------------------------------------------

ENDPOINT_LABELS = ("namespace", "name")
# Deleted uids remembered, so that a pass ending after its object's deletion records nothing.
_GONE_REMEMBERED = 10_000
_Sample = TypeVar("_Sample")
MODEL_STATES = tuple(state.value for state in ModelState)


@dataclass(frozen=True)
class EndpointSample:
    """What the last pass of one ModelEndpoint reported."""

    namespace: str
    name: str
    phase: str | None
    declared: int
    models: Mapping[str, int]
    """Models per state (Pending, Uploading, Available, Failed)."""


class _PerEndpoint(Collector, Generic[_Sample]):
    """Samples keyed by endpoint uid, read at scrape time from a copy made under the lock.

    The series of an endpoint go when it is forgotten (deleted), so their number follows
    the live objects. A pass that was still running when its object went records nothing
    (uids are never reused: a forgotten one stays forgotten).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, _Sample] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()

    def _keep(self, uid: str, sample: _Sample) -> None:
        with self._lock:
            if uid not in self._gone:
                self._samples[uid] = sample

    def _current(self) -> list[_Sample]:
        with self._lock:
            return list(self._samples.values())

    def forget(self, uid: str) -> None:
        """Drop the endpoint's series (it was deleted)."""
        with self._lock:
            self._samples.pop(uid, None)
            self._gone[uid] = None
            while len(self._gone) > _GONE_REMEMBERED:
                self._gone.popitem(last=False)


class EndpointMetrics(_PerEndpoint[EndpointSample]):
    """Each live ModelEndpoint's phase (one-hot) and model counts."""

    FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        (
            "mme_operator_endpoint_phase",
            "1 for the phase each ModelEndpoint is in, 0 for the others (sum by (phase) "
            "counts the endpoints in each).",
            (*ENDPOINT_LABELS, "phase"),
        ),
        (
            "mme_operator_endpoint_models",
            "Models of each ModelEndpoint by state (Pending, Uploading, Available, Failed).",
            (*ENDPOINT_LABELS, "state"),
        ),
        (
            "mme_operator_endpoint_models_declared",
            "Models each ModelEndpoint's spec declares.",
            ENDPOINT_LABELS,
        ),
    )

    def record(self, uid: str, namespace: str, name: str, status: ModelEndpointStatus) -> None:
        """Take ``status`` (a pass's result) as the endpoint's current state."""
        models = status.models or []
        counts = {state: sum(m.state == state for m in models) for state in MODEL_STATES}
        declared = status.model_count if status.model_count is not None else len(models)
        phase = status.phase.value if status.phase is not None else None
        self._keep(uid, EndpointSample(namespace, name, phase, declared, counts))

    def set_phase(self, uid: str, namespace: str, name: str, phase: Phase) -> None:
        """Change only the phase (a deletion in progress); the model counts stay."""
        with self._lock:
            if uid in self._gone:
                return
            old = self._samples.get(uid)
            declared, models = (old.declared, old.models) if old else (0, {})
            self._samples[uid] = EndpointSample(namespace, name, phase.value, declared, models)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(n, h, labels=labels) for n, h, labels in self.FAMILIES]

    def collect(self) -> Iterable[Metric]:
        samples = self._current()
        phase, models, declared = (
            GaugeMetricFamily(n, h, labels=labels) for n, h, labels in self.FAMILIES
        )
        for s in sorted(samples, key=lambda s: (s.namespace, s.name)):
            for p in Phase:
                phase.add_metric([s.namespace, s.name, p.value], float(p.value == s.phase))
            for state in MODEL_STATES:
                models.add_metric([s.namespace, s.name, state], float(s.models.get(state, 0)))
            declared.add_metric([s.namespace, s.name], float(s.declared))
        return [phase, models, declared]


ENDPOINTS = EndpointMetrics()
REGISTRY.register(ENDPOINTS)

CACHE_REASONS = (
    "Thrashing",
    "MemoryPressure",
    "CacheEffective",
    "CacheDisabled",
    "InsufficientData",
    "MetricsUnavailable",
)


@dataclass(frozen=True)
class CacheSample:
    """What the last metrics read of one ModelEndpoint reported (None: no data)."""

    namespace: str
    name: str
    reason: str
    figures: Mapping[str, float | None]


class CacheSignalMetrics(_PerEndpoint[CacheSample]):
    """Each live ModelEndpoint's MME cache signals from its last metrics read, read at
    scrape time; labels are namespace, name and (for the condition) one of
    :data:`CACHE_REASONS`, so the series follow the live objects."""

    GAUGES: tuple[tuple[str, str, str], ...] = (
        ("mme_operator_endpoint_cache_hit_ratio", "cache_hit_ratio",
         "Share of invocations whose model was loaded (ModelCacheHit) over the metrics window."),
        ("mme_operator_endpoint_loaded_models", "loaded_models",
         "Models loaded per instance on average (LoadedModelCount) over the metrics window."),
        ("mme_operator_endpoint_model_load_wait_seconds", "load_wait_seconds",
         "Average wait of an invocation for its model to load (ModelLoadingWaitTime)."),
        ("mme_operator_endpoint_model_unloads", "model_unloads",
         "Models unloaded over the metrics window (ModelUnloadingTime's sample count)."),
        ("mme_operator_endpoint_gpu_memory_utilization_ratio", "gpu_memory",
         "GPU memory in use per instance, 0-1 (GPUMemoryUtilization / 100)."),
        ("mme_operator_endpoint_gpu_utilization_ratio", "gpu",
         "GPU utilisation per instance, 0-1 (GPUUtilization / 100)."),
    )  # fmt: skip
    CONDITION = (
        "mme_operator_endpoint_cache_condition",
        "1 for CacheHealthy's reason (Thrashing, MemoryPressure, CacheEffective, "
        "CacheDisabled, InsufficientData, MetricsUnavailable), 0 for the others.",
    )

    def record(self, uid: str, namespace: str, name: str, status: ModelEndpointStatus) -> None:
        """Take the cache signals of ``status`` (a metrics read's result)."""
        cache = status.cache
        condition = next((c for c in status.conditions or [] if c.type == "CacheHealthy"), None)
        if condition is None:
            return

        def ratio(percent: float | None) -> float | None:
            return None if percent is None else percent / 100

        wait = cache.model_load_wait_ms if cache else None
        figures: dict[str, float | None] = {
            "cache_hit_ratio": cache.cache_hit_ratio if cache else None,
            "loaded_models": cache.loaded_models if cache else None,
            "load_wait_seconds": None if wait is None else wait / 1000,
            "model_unloads": float(cache.model_unloads)
            if cache and cache.model_unloads is not None
            else None,
            "gpu_memory": ratio(cache.gpu_memory_utilization_percent) if cache else None,
            "gpu": ratio(cache.gpu_utilization_percent) if cache else None,
        }
        self._keep(uid, CacheSample(namespace, name, condition.reason, figures))

    def describe(self) -> Iterable[Metric]:
        families = [GaugeMetricFamily(n, h, labels=ENDPOINT_LABELS) for n, _, h in self.GAUGES]
        return [*families, GaugeMetricFamily(*self.CONDITION, labels=(*ENDPOINT_LABELS, "reason"))]

    def collect(self) -> Iterable[Metric]:
        samples = sorted(self._current(), key=lambda s: (s.namespace, s.name))
        families = [GaugeMetricFamily(n, h, labels=ENDPOINT_LABELS) for n, _, h in self.GAUGES]
        condition = GaugeMetricFamily(*self.CONDITION, labels=(*ENDPOINT_LABELS, "reason"))
        for s in samples:
            for family, (_, key, _) in zip(families, self.GAUGES, strict=True):
                value = s.figures.get(key)
                if value is not None:
                    family.add_metric([s.namespace, s.name], float(value))
            for reason in CACHE_REASONS:
                condition.add_metric([s.namespace, s.name, reason], float(reason == s.reason))
        return [*families, condition]


CACHE = CacheSignalMetrics()
REGISTRY.register(CACHE)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    """Serve :data:`REGISTRY` in Prometheus text format on ``port`` (0 disables)."""
    if port == 0:
        return
    start_http_server(port, addr=addr, registry=REGISTRY)


# --- AWS calls -----------------------------------------------------------------------------

_HOOK_ID = "mme-operator-metrics"
# An error code is a label value: AWS's are short CamelCase words or an HTTP status. Whatever
# else an answer carries, and any code past the first _MAX_CODES seen, is counted as "Other".
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_CODES = 100
_codes_seen: set[str] = set()
_codes_lock = threading.Lock()


def bounded_error_code(code: str) -> str:
    """``code`` as a label value: itself when it looks like an AWS code (and the set of
    codes seen is not full), else ``Other``; empty stays empty (success)."""
    if not code:
        return ""
    if not _CODE.match(code):
        return "Other"
    with _codes_lock:
        if code in _codes_seen:
            return code
        if len(_codes_seen) >= _MAX_CODES:
            return "Other"
        _codes_seen.add(code)
        return code


def instrument_session(session: Any) -> Any:
    """Count every API call of every client made from boto3 ``session`` from now on.

    botocore copies a session's event handlers into each client it makes, so one
    registration covers S3, SageMaker, its runtime and Application Auto Scaling alike.
    Registering twice is harmless. Returns the session, for chaining.
    """
    _register(session.events)
    return session


def instrument_client(client: Any) -> Any:
    """Count every API call of one existing boto3/botocore ``client`` (as above)."""
    _register(client.meta.events)
    return client


def _register(events: Any) -> None:
    # after-call: once per API call, after botocore's retries, also for an HTTP error;
    # after-call-error: a call that got no answer (connection error, timeout);
    # needs-retry: after every HTTP attempt, answered or not.
    events.register("after-call", _on_after_call, unique_id=f"{_HOOK_ID}-after-call")
    events.register(
        "after-call-error", _on_after_call_error, unique_id=f"{_HOOK_ID}-after-call-error"
    )
    events.register("needs-retry", _on_attempt, unique_id=f"{_HOOK_ID}-needs-retry")


def _service_and_operation(event_name: str) -> tuple[str, str]:
    """``after-call.s3.HeadObject`` -> (``s3``, ``HeadObject``): botocore's service id."""
    _, service, operation = event_name.split(".", 2)
    return service, operation


def _answer_code(http_response: Any, parsed: Mapping[str, Any] | None, override: Any) -> str:
    if http_response is None or http_response.status_code < 300:
        return ""
    error = (parsed or {}).get("Error") or {}
    return str(override or error.get("Code") or http_response.status_code)


def _on_after_call(
    event_name: str,
    http_response: Any = None,
    parsed: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    code = _answer_code(http_response, parsed, (context or {}).get("error_code_override"))
    AWS_CALLS.labels(*_service_and_operation(event_name), bounded_error_code(code)).inc()


def _on_after_call_error(event_name: str, exception: BaseException, **_: Any) -> None:
    code = type(exception).__name__
    AWS_CALLS.labels(*_service_and_operation(event_name), bounded_error_code(code)).inc()


def _on_attempt(
    event_name: str,
    response: tuple[Any, Mapping[str, Any]] | None = None,
    caught_exception: BaseException | None = None,
    **_: Any,
) -> None:
    if caught_exception is not None:
        code = type(caught_exception).__name__
    elif response is not None:
        code = _answer_code(response[0], response[1], None)
    else:
        code = ""
    AWS_REQUESTS.labels(*_service_and_operation(event_name), bounded_error_code(code)).inc()
