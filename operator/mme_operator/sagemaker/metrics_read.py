"""An endpoint's MME cache metrics over a window: one CloudWatch ``GetMetricData`` call.

What MME publishes (SageMaker docs, "CloudWatch metrics for multi-model endpoint
deployments"; MME-FACTS #16): endpoint-level only, dimensions ``EndpointName`` and
``VariantName``, 1-minute resolution. In ``AWS/SageMaker``: ``ModelCacheHit`` (1 per
request whose model was loaded, 0 otherwise: its Average is the hit ratio),
``LoadedModelCount`` (per instance), ``ModelLoadingWaitTime`` and ``ModelUnloadingTime``
(microseconds). In ``/aws/sagemaker/Endpoints``: ``GPUMemoryUtilization`` and
``GPUUtilization`` (percent per instance).

The window is asked for in 1-minute periods and summed here (sums and sample counts add
up; averages are weighted by their sample counts), so any window length works.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mme_operator.metrics import instrument_session
from mme_operator.sagemaker.botocore_models import session_lock, shared_session
from mme_operator.sagemaker.errors import boto_config
from mme_operator.sagemaker.resources import VARIANT_NAME
from mme_operator.sagemaker.stopping import stop_with_operator
from mme_operator.settings import Settings

if TYPE_CHECKING:
    import boto3

CloudWatchClient = Any
"""A boto3 CloudWatch client (its stubs are not a dependency)."""

LOADING_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
PERIOD_SECONDS = 60

# (query id, namespace, metric, statistic)
QUERIES: tuple[tuple[str, str, str, str], ...] = (
    ("hits", LOADING_NAMESPACE, "ModelCacheHit", "Sum"),
    ("requests", LOADING_NAMESPACE, "ModelCacheHit", "SampleCount"),
    ("loadedSum", LOADING_NAMESPACE, "LoadedModelCount", "Sum"),
    ("loadedCount", LOADING_NAMESPACE, "LoadedModelCount", "SampleCount"),
    ("waitSum", LOADING_NAMESPACE, "ModelLoadingWaitTime", "Sum"),
    ("waitCount", LOADING_NAMESPACE, "ModelLoadingWaitTime", "SampleCount"),
    ("unloads", LOADING_NAMESPACE, "ModelUnloadingTime", "SampleCount"),
    ("gpuMemorySum", INSTANCE_NAMESPACE, "GPUMemoryUtilization", "Sum"),
    ("gpuMemoryCount", INSTANCE_NAMESPACE, "GPUMemoryUtilization", "SampleCount"),
    ("gpuSum", INSTANCE_NAMESPACE, "GPUUtilization", "Sum"),
    ("gpuCount", INSTANCE_NAMESPACE, "GPUUtilization", "SampleCount"),
)


@dataclass(frozen=True)
class CacheMetrics:
    """An endpoint's MME metrics summed over one window (None: no data points)."""

    invocations: int
    hits: int
    loaded_models: float | None
    load_waits: int
    load_wait_ms: float | None
    unloads: int
    gpu_memory_percent: float | None
    gpu_percent: float | None

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / self.invocations if self.invocations else None


def metric_queries(endpoint_name: str, variant_name: str = VARIANT_NAME) -> list[dict[str, Any]]:
    """The ``MetricDataQueries`` of one endpoint's window."""
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint_name},
        {"Name": "VariantName", "Value": variant_name},
    ]
    return [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": PERIOD_SECONDS,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for query_id, namespace, metric, stat in QUERIES
    ]


def summarize(results: Sequence[Mapping[str, Any]]) -> CacheMetrics:
    """``GetMetricData``'s ``MetricDataResults`` as one window's figures."""
    totals = {query_id: 0.0 for query_id, *_ in QUERIES}
    for result in results:
        if result.get("Id") in totals:
            totals[result["Id"]] += sum(float(v) for v in result.get("Values", []))

    def mean(total: str, count: str, scale: float = 1.0) -> float | None:
        return totals[total] / totals[count] * scale if totals[count] else None

    return CacheMetrics(
        invocations=int(totals["requests"]),
        hits=int(totals["hits"]),
        loaded_models=mean("loadedSum", "loadedCount"),
        load_waits=int(totals["waitCount"]),
        load_wait_ms=mean("waitSum", "waitCount", 1e-3),
        unloads=int(totals["unloads"]),
        gpu_memory_percent=mean("gpuMemorySum", "gpuMemoryCount"),
        gpu_percent=mean("gpuSum", "gpuCount"),
    )


def read_cache_metrics(
    cloudwatch: CloudWatchClient, endpoint_name: str, start: datetime, end: datetime
) -> CacheMetrics:
    """The endpoint's window from ``start`` to ``end`` (now): one GetMetricData call (a page
    holds 100,800 data points; 11 queries of 1-minute periods fit 6 days of window in one).

    CloudWatch compares times at whole seconds: asked up to ``end`` itself, the data points
    of its last second would be left out, so the call asks one period past it.
    """
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=metric_queries(endpoint_name),
        StartTime=start,
        EndTime=end + timedelta(seconds=PERIOD_SECONDS),
    )
    return summarize(answer.get("MetricDataResults", []))


class CloudWatchClients:
    """One CloudWatch client per region, made like the other AWS clients (same retries,
    endpoint URL, call metrics), on first use."""

    def __init__(self, settings: Settings, session: boto3.session.Session | None = None) -> None:
        self._settings = settings
        self._session = session
        self._clients: dict[str, CloudWatchClient] = {}
        self._guard = threading.Lock()

    def __call__(self, region: str) -> CloudWatchClient:
        with self._guard:
            if region not in self._clients:
                self._clients[region] = self._make(region)
            return self._clients[region]

    def _make(self, region: str) -> CloudWatchClient:
        settings = self._settings
        config = boto_config(
            max_attempts=settings.aws_max_attempts,
            mode=settings.aws_retry_mode,
            read_timeout_seconds=settings.aws_read_timeout_seconds,
        )
        url = settings.aws_endpoint_url
        if self._session is not None:
            session = instrument_session(self._session)
            client = session.client(
                "cloudwatch", region_name=region, endpoint_url=url, config=config
            )
        else:
            shared = shared_session()  # takes the session lock itself: before holding it
            with session_lock():
                client = shared.client(
                    "cloudwatch", region_name=region, endpoint_url=url, config=config
                )
        stop_with_operator(client)
        return client
