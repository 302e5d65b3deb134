"""MME cache signals: the endpoint's CloudWatch metrics turned into ``status.cache`` and the
``CacheHealthy`` condition, with the sizing's fix as its message.

Read once per metrics interval (``MME_METRICS_INTERVAL_SECONDS``), one ``GetMetricData``
per Ready endpoint, apart from the drift checks. The window reaches back
``MME_METRICS_WINDOW_SECONDS``, but never past the first read of the endpoint config in
effect: an update starts a new fleet, whose cache owes nothing to the old one's.

The verdict (:func:`classify`, pure):

- ``Thrashing`` (False): at least :data:`MIN_INVOCATIONS` invocations, a hit ratio under
  :data:`LOW_HIT_RATIO`, and models unloaded for at least :data:`FREQUENT_UNLOADS` of the
  invocations: the hot set does not fit, so requests wait for loads.
- ``MemoryPressure`` (False): GPU memory in use averages :data:`NEAR_FULL_PERCENT` or more
  over the window (not thrashing, yet loads and inference are short of room).
- ``CacheDisabled`` (True): ``ModelCacheSetting: Disabled`` loads on every invocation by design.
- ``CacheEffective`` (True): enough invocations, and none of the above.
- ``InsufficientData`` (Unknown): no read yet, a new fleet, or too few invocations.
- ``MetricsUnavailable`` (Unknown): GetMetricData failed (the message says why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions

from mme_operator.api import (
    ConditionStatus,
    ConditionType,
    ModelEndpoint,
    ModelEndpointStatus,
    Phase,
    Reason,
    validate_resource,
)
from mme_operator.api.spec import ModelCacheSetting
from mme_operator.api.status import CacheStatus, parse_rfc3339, rfc3339
from mme_operator.api.validation import previous_status
from mme_operator.reconcile.status import set_condition
from mme_operator.sagemaker.errors import describe_error
from mme_operator.sagemaker.metrics_read import CacheMetrics
from mme_operator.settings import Settings
from mme_operator.sizing.cache_fix import Observed, fix_memory_pressure, fix_thrashing
from mme_operator.sizing.catalogue import InstanceCatalogue
from mme_operator.sizing.fit import DEFAULT_HEADROOM_PERCENT, ModelNeed

log = logging.getLogger("mme_operator.reconcile")

MIN_INVOCATIONS = 20
LOW_HIT_RATIO = 0.8
FREQUENT_UNLOADS = 0.1
NEAR_FULL_PERCENT = 90.0

ReadMetrics = Callable[[str, str, datetime, datetime], CacheMetrics]
"""(region, endpoint name, start, end) -> the window's metrics (one GetMetricData)."""

Verdict = tuple[ConditionStatus, Reason, str]


def classify(metrics: CacheMetrics | None, *, cache_disabled: bool = False) -> Verdict:
    """CacheHealthy's status, reason and the figures behind it (without the fix)."""
    if metrics is None:
        return ConditionStatus.UNKNOWN, Reason.INSUFFICIENT_DATA, "no metrics read yet"
    ratio = metrics.hit_ratio
    figures = _figures(metrics)
    unload_share = metrics.unloads / metrics.invocations if metrics.invocations else 0.0
    if (
        not cache_disabled
        and metrics.invocations >= MIN_INVOCATIONS
        and ratio is not None
        and ratio < LOW_HIT_RATIO
        and unload_share >= FREQUENT_UNLOADS
    ):
        return ConditionStatus.FALSE, Reason.THRASHING, f"the model cache thrashes: {figures}"
    memory = metrics.gpu_memory_percent
    if memory is not None and memory >= NEAR_FULL_PERCENT:
        return (
            ConditionStatus.FALSE,
            Reason.MEMORY_PRESSURE,
            f"GPU memory stays near full: {figures}",
        )
    if cache_disabled:
        return (
            ConditionStatus.TRUE,
            Reason.CACHE_DISABLED,
            f"ModelCacheSetting is Disabled: every invocation loads its model ({figures})",
        )
    if metrics.invocations < MIN_INVOCATIONS:
        return (
            ConditionStatus.UNKNOWN,
            Reason.INSUFFICIENT_DATA,
            f"{metrics.invocations} invocations in the window, {MIN_INVOCATIONS} needed to "
            "judge the cache",
        )
    return ConditionStatus.TRUE, Reason.CACHE_EFFECTIVE, f"models stay loaded: {figures}"


def _figures(m: CacheMetrics) -> str:
    parts = [f"{m.invocations} invocations"]
    if m.hit_ratio is not None:
        parts.append(f"hit ratio {m.hit_ratio:.2f}")
    parts.append(f"{m.load_waits} loads, {m.unloads} unloads")
    if m.load_wait_ms is not None:
        parts.append(f"load wait {m.load_wait_ms:.0f} ms on average")
    if m.loaded_models is not None:
        parts.append(f"{m.loaded_models:.1f} models loaded per instance")
    if m.gpu_memory_percent is not None:
        parts.append(f"GPU memory {m.gpu_memory_percent:.0f}%")
    if m.gpu_percent is not None:
        parts.append(f"GPU {m.gpu_percent:.0f}%")
    return ", ".join(parts)


def needs_from_status(status: ModelEndpointStatus) -> list[ModelNeed]:
    """The models' GPU memory as the last pass's sizing wrote it (``status.capacity``)."""
    capacity = status.capacity
    return [
        ModelNeed(m.name, 1, m.gpu_memory_mib, m.basis, cpu_only=m.basis == "KIND_CPU")
        for m in (capacity.models or [] if capacity else [])
    ]


def with_fix(
    verdict: Verdict,
    resource: ModelEndpoint,
    status: ModelEndpointStatus,
    metrics: CacheMetrics | None,
    catalogue: InstanceCatalogue,
) -> Verdict:
    """The verdict with the sizing's fix appended when the condition is False."""
    instance_type = status.instance_type or resource.spec.instance_type or ""
    headroom = status.capacity.headroom_percent if status.capacity else DEFAULT_HEADROOM_PERCENT
    needs = needs_from_status(status)
    return _fixed(verdict, resource, needs, instance_type, headroom, metrics, catalogue)


def _fixed(
    verdict: Verdict,
    resource: ModelEndpoint,
    needs: Sequence[ModelNeed],
    instance_type: str,
    headroom: float,
    metrics: CacheMetrics | None,
    catalogue: InstanceCatalogue,
) -> Verdict:
    state, reason, message = verdict
    if state != ConditionStatus.FALSE:
        return verdict
    spec = resource.spec
    observed = Observed(
        metrics.loaded_models if metrics else None,
        metrics.gpu_memory_percent if metrics else None,
    )
    args = (needs, catalogue, spec.region, instance_type, spec.instance_count, headroom)
    if reason == Reason.THRASHING:
        fix = fix_thrashing(*args, observed=observed)
    else:
        limit = spec.serving.model_load_gpu_limit if spec.serving else None
        fix = fix_memory_pressure(*args, limit, observed=observed)
    return state, reason, f"{message}. Fix: {fix.message}"


def endpoint_cache_report(
    resource: ModelEndpoint,
    needs: Sequence[ModelNeed],
    headroom: float,
    catalogue: InstanceCatalogue,
    read: ReadMetrics,
    settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``mme-operator size --from-endpoint``: the endpoint's last metrics window, the
    CacheHealthy verdict and the fix, as the JSON output has them. One GetMetricData."""
    now = now or datetime.now(UTC)
    start = now - timedelta(seconds=settings.metrics_window_seconds)
    instance_type = resource.spec.instance_type or ""
    out: dict[str, Any] = {
        "endpointName": resource.endpoint_name,
        "windowStart": rfc3339(start),
        "readAt": rfc3339(now),
    }
    try:
        metrics: CacheMetrics | None = read(
            resource.spec.region, resource.endpoint_name, start, now
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        metrics = None
        verdict: Verdict = (
            ConditionStatus.UNKNOWN,
            Reason.METRICS_UNAVAILABLE,
            f"reading the endpoint's metrics failed: {describe_error(exc)}",
        )
    else:
        verdict = classify(metrics, cache_disabled=_cache_disabled(resource))
        verdict = _fixed(verdict, resource, needs, instance_type, headroom, metrics, catalogue)
    if metrics is not None:
        figures = cache_status(metrics, now, start, None)
        out.update(figures.model_dump(by_alias=True, exclude_none=True, mode="json"))
    state, reason, message = verdict
    out["cacheHealthy"] = {"status": state.value, "reason": reason.value, "message": message}
    return out


def cache_event(
    before: ModelEndpointStatus | None, after: ModelEndpointStatus
) -> tuple[str, str] | None:
    """The event to post for a read: (reason, message) when CacheHealthy turns False (or
    changes why: a Warning), or True again after False (Normal); None while it stays."""
    old = next((c for c in (before.conditions or [] if before else []) if c.type == _TYPE), None)
    new = next((c for c in after.conditions or [] if c.type == _TYPE), None)
    if new is None or (old is not None and (old.status, old.reason) == (new.status, new.reason)):
        return None
    was_false = old is not None and old.status == ConditionStatus.FALSE
    if new.status == ConditionStatus.FALSE or (new.status == ConditionStatus.TRUE and was_false):
        return new.reason, new.message
    return None


_TYPE = ConditionType.CACHE_HEALTHY


def _cache_disabled(resource: ModelEndpoint) -> bool:
    serving = resource.spec.serving
    return serving is not None and serving.model_cache == ModelCacheSetting.DISABLED


def metrics_due(status: ModelEndpointStatus | None) -> bool:
    """Whether the endpoint's metrics are worth reading: it is Ready and InService."""
    return (
        status is not None
        and status.phase == Phase.READY
        and bool(status.endpoint_name)
        and status.endpoint_status == "InService"
    )


def observe_cache(
    body: Mapping[str, Any],
    read: ReadMetrics,
    settings: Settings,
    catalogue: InstanceCatalogue,
    now: datetime | None = None,
) -> ModelEndpointStatus | None:
    """The status with this interval's cache signals; None when nothing is to be read
    (not Ready, or a spec that does not parse). At most one GetMetricData."""
    status = previous_status(body.get("status"))
    if status is None or not metrics_due(status):
        return None
    resource, _ = validate_resource({k: v for k, v in body.items() if k != "status"})
    if resource is None:
        return None
    now = now or datetime.now(UTC)
    assert status.endpoint_name is not None
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    before = status.cache
    config = status.endpoint_config_name
    if before is not None and before.endpoint_config_name != config:
        # A new fleet: measure it from now, nothing read yet.
        cache = CacheStatus(
            read_at=rfc3339(now), window_start=rfc3339(now), endpoint_config_name=config
        )
        verdict: Verdict = (
            ConditionStatus.UNKNOWN,
            Reason.INSUFFICIENT_DATA,
            f"endpoint config {config} is new: its cache is measured from {cache.window_start}",
        )
        return _with(status, cache, verdict, generation)
    window = timedelta(seconds=settings.metrics_window_seconds)
    since = parse_rfc3339(before.window_start) if before is not None else None
    start = max(since or now - window, now - window)
    try:
        metrics = read(resource.spec.region, status.endpoint_name, start, now)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        message = f"reading the endpoint's metrics failed: {describe_error(exc)}"
        log.warning("Cache metrics of %s: %s", status.endpoint_name, message)
        unavailable = (ConditionStatus.UNKNOWN, Reason.METRICS_UNAVAILABLE, message)
        return _with(status, before, unavailable, generation)
    cache = cache_status(metrics, now, start, config)
    verdict = classify(metrics, cache_disabled=_cache_disabled(resource))
    verdict = with_fix(verdict, resource, status, metrics, catalogue)
    return _with(status, cache, verdict, generation)


def nothing_new(before: ModelEndpointStatus | None, after: ModelEndpointStatus) -> bool:
    """Whether a read found what status already says: the same figures (whatever the read's
    time and window) and the same ``CacheHealthy``. Such a read writes nothing, so an idle
    endpoint's status is not rewritten every metrics interval."""
    if before is None or before.cache is None or after.cache is None:
        return False
    moving = {"read_at", "window_start"}
    if before.cache.model_dump(exclude=moving) != after.cache.model_dump(exclude=moving):
        return False

    def healthy(status: ModelEndpointStatus) -> tuple[str, str, str | None] | None:
        for c in status.conditions or []:
            if c.type == ConditionType.CACHE_HEALTHY:
                return c.status, c.reason, c.message
        return None

    return healthy(before) == healthy(after)


def cache_status(
    metrics: CacheMetrics, now: datetime, start: datetime, config: str | None
) -> CacheStatus:
    """``status.cache`` from one window's metrics."""
    return CacheStatus(
        read_at=rfc3339(now),
        window_start=rfc3339(start),
        endpoint_config_name=config,
        invocations=metrics.invocations,
        cache_hit_ratio=_round(metrics.hit_ratio, 3),
        model_loads=metrics.load_waits,
        model_unloads=metrics.unloads,
        loaded_models=_round(metrics.loaded_models, 2),
        model_load_wait_ms=_round(metrics.load_wait_ms, 1),
        gpu_memory_utilization_percent=_round(metrics.gpu_memory_percent, 1),
        gpu_utilization_percent=_round(metrics.gpu_percent, 1),
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _with(
    status: ModelEndpointStatus,
    cache: CacheStatus | None,
    verdict: Verdict,
    generation: int,
) -> ModelEndpointStatus:
    conditions = set_condition(
        list(status.conditions or []), ConditionType.CACHE_HEALTHY, *verdict, generation
    )
    return status.model_copy(update={"cache": cache, "conditions": conditions})
