"""CacheHealthy from an endpoint's MME metrics: the verdict, the fix the sizing works out,
and the window a read covers (pure: the metrics read is handed in)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from botocore.exceptions import ClientError
from mme_operator.api import ConditionStatus, ConditionType, Reason
from mme_operator.api.status import Condition, ModelEndpointStatus
from mme_operator.api.validation import previous_status
from mme_operator.handlers import OperatorContext, register
from mme_operator.reconcile.cache_signals import (
    cache_event,
    classify,
    nothing_new,
    observe_cache,
)
from mme_operator.reconcile.status import set_condition
from mme_operator.sagemaker.metrics_read import CacheMetrics, metric_queries, summarize
from mme_operator.settings import Settings
from mme_operator.sizing import get_catalogue
from mme_operator.sizing.cache_fix import Observed, fix_memory_pressure, fix_thrashing
from mme_operator.sizing.fit import ModelNeed

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def window(
    invocations: int = 100,
    hits: int = 95,
    unloads: int = 0,
    gpu_memory: float | None = 50.0,
    loaded: float | None = 4.0,
) -> CacheMetrics:
    return CacheMetrics(
        invocations=invocations,
        hits=hits,
        loaded_models=loaded,
        load_waits=invocations - hits,
        load_wait_ms=850.0,
        unloads=unloads,
        gpu_memory_percent=gpu_memory,
        gpu_percent=30.0,
    )


def test_a_low_hit_ratio_with_frequent_unloads_is_thrashing() -> None:
    state, reason, message = classify(window(hits=20, unloads=75))
    assert (state, reason) == (ConditionStatus.FALSE, Reason.THRASHING)
    assert "hit ratio 0.20" in message and "75 unloads" in message


def test_a_low_hit_ratio_without_unloads_is_not_thrashing() -> None:
    # Cold models loading for the first time: misses, but nothing pushed out.
    assert classify(window(hits=20, unloads=0))[1] == Reason.CACHE_EFFECTIVE


def test_gpu_memory_near_full_is_memory_pressure() -> None:
    assert classify(window(gpu_memory=96.0))[:2] == (
        ConditionStatus.FALSE,
        Reason.MEMORY_PRESSURE,
    )


def test_thrashing_wins_over_memory_pressure() -> None:
    assert classify(window(hits=10, unloads=80, gpu_memory=99.0))[1] == Reason.THRASHING


def test_too_few_invocations_say_nothing_yet() -> None:
    assert classify(window(invocations=5, hits=0, unloads=5))[:2] == (
        ConditionStatus.UNKNOWN,
        Reason.INSUFFICIENT_DATA,
    )
    assert classify(None)[:2] == (ConditionStatus.UNKNOWN, Reason.INSUFFICIENT_DATA)


def test_a_disabled_cache_misses_by_design() -> None:
    verdict = classify(window(hits=0, unloads=100), cache_disabled=True)
    assert verdict[:2] == (ConditionStatus.TRUE, Reason.CACHE_DISABLED)


def test_the_window_sums_one_minute_periods() -> None:
    ids = [q["Id"] for q in metric_queries("ep")]
    results = [{"Id": i, "Values": [1.0, 3.0]} for i in ids]
    results += [
        {"Id": "hits", "Values": [10.0, 30.0]},
        {"Id": "requests", "Values": [20.0, 60.0]},
        {"Id": "waitSum", "Values": [4_000_000.0]},
        {"Id": "waitCount", "Values": [2.0]},
    ]
    metrics = summarize(results)
    assert metrics.invocations == 84 and metrics.hits == 44
    assert metrics.load_wait_ms == pytest.approx(4_000_004 / 6 / 1000)
    dimensions = metric_queries("ep")[0]["MetricStat"]["Metric"]["Dimensions"]
    assert dimensions == [
        {"Name": "EndpointName", "Value": "ep"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]


NEEDS = [ModelNeed(f"m{i}", 16, 4097, "estimate") for i in range(5)]  # 20,485 MiB


def test_thrashing_is_fixed_by_the_cheaper_of_a_larger_type_and_more_instances() -> None:
    fix = fix_thrashing(NEEDS, get_catalogue(), "us-east-1", "ml.g4dn.xlarge", 1, 10)
    # 20,485 MiB fit one A10G (22,118 MiB usable) or two T4s between them; one g5.xlarge
    # costs less than two g4dn.xlarge.
    assert fix.instance_type == "ml.g5.xlarge"
    assert "20485 MiB" in fix.message
    assert "or run 2 instances of ml.g4dn.xlarge" in fix.message


def test_the_metrics_raise_the_estimate_when_models_take_more_than_it_says() -> None:
    small = [ModelNeed(f"m{i}", 1, 300, "estimate") for i in range(5)]  # 1,500 MiB: fits
    # Seen: 3 models loaded per instance fill 97% of a T4: ~5.3 GiB each.
    seen = Observed(loaded_models=3.0, gpu_memory_percent=97.0)
    fix = fix_thrashing(small, get_catalogue(), "us-east-1", "ml.g4dn.xlarge", 1, 10, seen)
    assert "from the metrics" in fix.message
    assert fix.instance_type is not None or fix.instance_count is not None


def test_memory_pressure_first_lowers_the_load_limit_then_asks_for_a_larger_type() -> None:
    catalogue = get_catalogue()
    fix = fix_memory_pressure(NEEDS, catalogue, "us-east-1", "ml.g4dn.xlarge", 1, 10, None)
    assert fix.model_load_gpu_limit == 0.8 and "modelLoadGpuLimit to 0.8" in fix.message
    fix = fix_memory_pressure(NEEDS, catalogue, "us-east-1", "ml.g4dn.xlarge", 1, 10, 0.7)
    assert fix.model_load_gpu_limit is None and fix.instance_type == "ml.g5.xlarge"


BODY: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "cache", "namespace": "ml", "uid": "u-1", "generation": 2},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models"},
        "instanceType": "ml.g4dn.xlarge",
        "models": [{"name": f"m{i}", "source": f"s3://src/m{i}.onnx"} for i in range(5)],
    },
    "status": {
        "phase": "Ready",
        "endpointName": "ml-cache",
        "endpointStatus": "InService",
        "endpointConfigName": "config-a",
        "instanceType": "ml.g4dn.xlarge",
        "capacity": {
            "gpuMemoryRequiredMiB": 20485,
            "gpuMemoryAvailableMiB": 14745,
            "headroomPercent": 10,
            "fits": False,
            "models": [
                {"name": f"m{i}", "gpuMemoryMiB": 4097, "basis": "estimate"} for i in range(5)
            ],
        },
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}],
    },
}


class Reads:
    """The metrics read handed to observe_cache: records each window asked for."""

    def __init__(self, metrics: CacheMetrics) -> None:
        self.metrics = metrics
        self.windows: list[tuple[datetime, datetime]] = []

    def __call__(self, region: str, endpoint: str, start: datetime, end: datetime) -> Any:
        assert (region, endpoint) == ("us-east-1", "ml-cache")
        self.windows.append((start, end))
        return self.metrics


def condition(status: Any) -> Any:
    return next(c for c in status.conditions if c.type == "CacheHealthy")


def test_a_thrashing_read_says_so_in_status_with_the_fix() -> None:
    reads = Reads(window(hits=10, unloads=85, gpu_memory=80.0, loaded=3.0))
    status = observe_cache(BODY, reads, Settings(), get_catalogue(), NOW)

    assert status is not None and status.cache is not None
    cache = condition(status)
    assert (cache.status, cache.reason) == ("False", "Thrashing")
    assert "Fix: " in cache.message and "ml.g5.xlarge" in cache.message
    assert cache.observed_generation == 2
    assert status.cache.cache_hit_ratio == 0.1 and status.cache.model_unloads == 85
    assert status.cache.endpoint_config_name == "config-a"
    assert reads.windows == [(NOW - timedelta(seconds=900), NOW)]


def test_a_new_endpoint_config_starts_a_new_window_without_a_read() -> None:
    body = copy.deepcopy(BODY)
    body["status"]["cache"] = {
        "readAt": "2026-12-02T11:55:00Z",
        "windowStart": "2026-12-02T11:40:00Z",
        "endpointConfigName": "config-old",
        "invocations": 100,
    }
    reads = Reads(window())
    status = observe_cache(body, reads, Settings(), get_catalogue(), NOW)

    assert reads.windows == []
    assert status is not None and status.cache is not None
    assert status.cache.window_start == "2026-12-02T12:00:00Z"
    assert status.cache.invocations is None
    assert condition(status).reason == "InsufficientData"

    # The next read covers only what the new fleet served.
    body["status"] = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    later = NOW + timedelta(minutes=5)
    observe_cache(body, reads, Settings(), get_catalogue(), later)
    assert reads.windows == [(NOW, later)]


def test_a_read_that_finds_the_same_figures_writes_nothing() -> None:
    """An idle endpoint: status is written once, not every metrics interval."""
    reads = Reads(window(hits=10, unloads=85, gpu_memory=80.0, loaded=3.0))
    first = observe_cache(BODY, reads, Settings(), get_catalogue(), NOW)
    assert first is not None
    assert not nothing_new(previous_status(BODY["status"]), first)

    body = copy.deepcopy(BODY)
    body["status"] = first.model_dump(by_alias=True, mode="json", exclude_none=True)
    later = NOW + timedelta(minutes=5)
    again = observe_cache(body, reads, Settings(), get_catalogue(), later)
    assert again is not None and again.cache is not None
    assert again.cache.read_at != first.cache.read_at  # type: ignore[union-attr]
    assert nothing_new(previous_status(body["status"]), again)

    # New figures, or the same figures with another verdict, are written.
    reads.metrics = window(hits=95, unloads=0, gpu_memory=40.0, loaded=3.0)
    changed = observe_cache(body, reads, Settings(), get_catalogue(), later)
    assert changed is not None and not nothing_new(previous_status(body["status"]), changed)


def test_nothing_is_read_for_an_endpoint_that_is_not_ready() -> None:
    body = copy.deepcopy(BODY)
    body["status"]["phase"] = "Updating"
    reads = Reads(window())
    assert observe_cache(body, reads, Settings(), get_catalogue(), NOW) is None
    assert reads.windows == []


def test_a_failed_read_is_metrics_unavailable_and_keeps_the_last_summary() -> None:
    body = copy.deepcopy(BODY)
    last = {"readAt": "2026-12-02T11:55:00Z", "windowStart": "2026-12-02T11:40:00Z"}
    body["status"]["cache"] = {**last, "endpointConfigName": "config-a", "invocations": 100}

    def denied(region: str, endpoint: str, start: datetime, end: datetime) -> CacheMetrics:
        error = {"Code": "AccessDenied", "Message": "not authorized: cloudwatch:GetMetricData"}
        raise ClientError({"Error": error}, "GetMetricData")

    status = observe_cache(body, denied, Settings(), get_catalogue(), NOW)

    assert status is not None and status.cache is not None
    assert (condition(status).status, condition(status).reason) == (
        "Unknown",
        "MetricsUnavailable",
    )
    assert "GetMetricData" in condition(status).message
    assert status.cache.invocations == 100 and status.cache.read_at == last["readAt"]


@pytest.mark.parametrize(("interval", "timers"), [(0, 1), (60, 2)])
def test_a_zero_metrics_interval_registers_no_metrics_timer(interval: float, timers: int) -> None:
    registry = kopf.OperatorRegistry()
    register(registry, OperatorContext(Settings(metrics_interval_seconds=interval)))
    ids = [h.id for h in registry._spawning.get_all_handlers()]
    assert len(ids) == timers
    assert any("cache_signals" in i for i in ids) == (interval > 0)


def with_cache(status: str, reason: str) -> ModelEndpointStatus:
    return ModelEndpointStatus(
        conditions=[Condition(type="CacheHealthy", status=ConditionStatus(status), reason=reason)]
    )


def test_an_event_is_posted_when_the_cache_turns_bad_and_when_it_recovers_only() -> None:
    thrashing = with_cache("False", "Thrashing")
    assert cache_event(with_cache("Unknown", "InsufficientData"), thrashing) == (
        "Thrashing",
        "",
    )
    assert cache_event(thrashing, thrashing) is None
    assert cache_event(thrashing, with_cache("False", "MemoryPressure")) is not None
    assert cache_event(thrashing, with_cache("True", "CacheEffective")) == ("CacheEffective", "")
    assert cache_event(None, with_cache("True", "CacheEffective")) is None
    assert cache_event(None, with_cache("Unknown", "InsufficientData")) is None


def test_a_condition_is_replaced_where_it_stands() -> None:
    """A pass after a metrics read sets Ready again: CacheHealthy (added last by the metrics
    timer) stays after it, so an unchanged pass finds the same list and writes nothing."""
    ready = (ConditionType.READY, ConditionStatus.TRUE, Reason.RECONCILED, "ok", 2)
    conditions = set_condition([], *ready)
    conditions = set_condition(
        conditions, ConditionType.CACHE_HEALTHY, ConditionStatus.TRUE, "CacheEffective", "", 2
    )
    again = set_condition(conditions, *ready)

    assert [c.type for c in again] == ["Ready", "CacheHealthy"]
    assert again == conditions
