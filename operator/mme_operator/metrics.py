"""Prometheus metrics of the operator, on one registry of their own.

The metric objects are module-level, so any layer can count without passing them around;
they live on :data:`REGISTRY` rather than prometheus_client's global registry, so the
metrics endpoint shows exactly the operator's metrics. AWS calls are counted by
:func:`instrument_client`, a botocore event hook, so no code has to count them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from mme_operator.api.status import Phase

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_RESULTS = ("success", "retry", "error", "invalid")

RECONCILES = Counter(
    "mme_reconciles",
    "Reconciles of ModelEndpoints by result: success, retry (come back later), "
    "error (unexpected failure), invalid (the spec is wrong).",
    ["result"],
    registry=REGISTRY,
)
AWS_CALLS = Counter(
    "mme_aws_calls",
    "AWS API calls by service, operation and error code (empty on success).",
    ["service", "operation", "error_code"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "mme_reconcile_duration_seconds",
    "Wall time of one reconcile, including artifact packaging and upload.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
ENDPOINTS = Gauge(
    "mme_endpoints",
    "ModelEndpoints known to the operator, by phase.",
    ["phase"],
    registry=REGISTRY,
)
BYTES_UPLOADED = Counter(
    "mme_bytes_uploaded",
    "Bytes of model archives uploaded to S3.",
    registry=REGISTRY,
)

# Every label value exists from the start, so dashboards and rate() see zeros, not gaps.
for _result in RECONCILE_RESULTS:
    RECONCILES.labels(result=_result)
for _phase in Phase:
    ENDPOINTS.labels(phase=_phase.value)

_HOOK_ID = "mme-operator-metrics"


def record_reconcile(result: str, duration_seconds: float) -> None:
    """Count one finished reconcile and its duration."""
    if result not in RECONCILE_RESULTS:
        raise ValueError(
            f"unknown reconcile result {result!r}; expected one of {RECONCILE_RESULTS}"
        )
    RECONCILES.labels(result=result).inc()
    RECONCILE_DURATION.observe(duration_seconds)


def set_endpoint_phases(counts: Mapping[str, int]) -> None:
    """Set the endpoints-per-phase gauge; phases not named are set to zero."""
    for phase in Phase:
        ENDPOINTS.labels(phase=phase.value).set(counts.get(phase.value, 0))
    for phase_name, count in counts.items():
        if phase_name not in Phase.__members__.values():
            ENDPOINTS.labels(phase=phase_name).set(count)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    """Serve :data:`REGISTRY` in Prometheus text format on ``port`` (0 disables)."""
    if port == 0:
        return
    start_http_server(port, addr=addr, registry=REGISTRY)


def instrument_client(client: Any) -> Any:
    """Count every API call of a boto3/botocore ``client`` in ``mme_aws_calls_total``.

    Uses botocore's events: ``after-call`` fires once per API call (after botocore's own
    retries) with the parsed response, also for HTTP error responses; ``after-call-error``
    fires when no response came (connection error, timeout). Registering twice on one
    client is harmless. Returns the client, for chaining.
    """
    service = client.meta.service_model.service_name
    events = client.meta.events

    def on_after_call(
        event_name: str,
        http_response: Any = None,
        parsed: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> None:
        error_code = ""
        if http_response is not None and http_response.status_code >= 300:
            error = (parsed or {}).get("Error", {})
            override = (context or {}).get("error_code_override")
            error_code = str(override or error.get("Code") or http_response.status_code)
        AWS_CALLS.labels(service, _operation(event_name), error_code).inc()

    def on_after_call_error(event_name: str, exception: BaseException, **_: Any) -> None:
        AWS_CALLS.labels(service, _operation(event_name), type(exception).__name__).inc()

    events.register("after-call", on_after_call, unique_id=f"{_HOOK_ID}-after-call")
    events.register(
        "after-call-error", on_after_call_error, unique_id=f"{_HOOK_ID}-after-call-error"
    )
    return client


def _operation(event_name: str) -> str:
    """``after-call.s3.HeadObject`` -> ``HeadObject``."""
    return event_name.rsplit(".", 1)[-1]
