"""Prometheus metrics: AWS calls counted by the botocore hooks against a real (moto) server,
pass durations, per-endpoint series, and the metrics endpoint served over HTTP.

(A running operator scraped end to end: tests/faults/test_metrics.py.)"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from mme_operator import metrics
from mme_operator.api.status import ModelEndpointStatus, ModelState, ModelStatus, Phase
from mme_operator.sagemaker import make_clients
from mme_operator.settings import Settings
from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint_url: str, retries: Config | None = None) -> object:
    config = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config.merge(retries) if retries else config,
    )


def calls(operation: str, error_code: str = "", service: str = "s3", name: str = "calls") -> float:
    value = metrics.REGISTRY.get_sample_value(
        f"mme_operator_aws_{name}_total",
        {"service": service, "operation": operation, "error_code": error_code},
    )
    return value or 0.0


def test_successful_and_failed_aws_calls_are_counted_by_operation_and_code(moto_url: str) -> None:
    s3 = metrics.instrument_client(s3_client(moto_url))
    metrics.instrument_client(s3)  # a second registration must not double count
    before = calls("CreateBucket"), calls("PutObject"), calls("HeadObject", "404")

    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="mme/bert.tar.gz", Body=b"archive")
    with pytest.raises(ClientError):
        s3.head_object(Bucket="models", Key="mme/missing.tar.gz")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket="models", Key="mme/missing.tar.gz")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"

    assert calls("CreateBucket") == before[0] + 1
    assert calls("PutObject") == before[1] + 1
    assert calls("HeadObject", "404") == before[2] + 1
    assert calls("GetObject", "NoSuchKey") >= 1


def test_calls_that_get_no_response_are_counted_by_exception(moto_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    s3 = metrics.instrument_client(s3_client(dead))
    before = calls("ListBuckets", "EndpointConnectionError")
    requests = calls("ListBuckets", "EndpointConnectionError", name="requests")
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()
    assert calls("ListBuckets", "EndpointConnectionError") == before + 1
    # retries={"max_attempts": 1} is botocore's one retry: two requests, neither answered.
    assert calls("ListBuckets", "EndpointConnectionError", name="requests") == requests + 2


def test_every_request_is_counted_retries_included(moto_url: str) -> None:
    # A dead port, three attempts in all (total_max_attempts): one call, three requests.
    retries = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=0.2)
    dead = metrics.instrument_client(s3_client(f"http://127.0.0.1:{free_port()}", retries))
    code = "EndpointConnectionError"
    before = calls("ListObjects", code), calls("ListObjects", code, name="requests")
    with pytest.raises(EndpointConnectionError):
        dead.list_objects(Bucket="models")
    assert calls("ListObjects", code) == before[0] + 1
    assert calls("ListObjects", code, name="requests") == before[1] + 3


def test_a_session_counts_every_client_made_from_it(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients = make_clients(
        "us-east-1", Settings(aws_endpoint_url=moto_url), session=boto3.session.Session()
    )
    scaling = "application-auto-scaling"  # botocore's service id
    before = calls("CreateBucket"), calls("DescribeScalableTargets", service=scaling)

    clients.s3.create_bucket(Bucket="session-counted")
    clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")

    assert calls("CreateBucket") == before[0] + 1
    assert calls("DescribeScalableTargets", service=scaling) == before[1] + 1
    assert calls("CreateBucket", name="requests") >= 1


def test_error_codes_are_bounded_label_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_codes_seen", set())
    assert metrics.bounded_error_code("") == ""
    assert metrics.bounded_error_code("ThrottlingException") == "ThrottlingException"
    assert metrics.bounded_error_code("503") == "503"
    assert metrics.bounded_error_code("<html>Bad Gateway</html>") == "Other"
    assert metrics.bounded_error_code("x" * 200) == "Other"
    for i in range(200):
        metrics.bounded_error_code(f"Code{i}")
    assert metrics.bounded_error_code("YetAnotherCode") == "Other"
    assert metrics.bounded_error_code("ThrottlingException") == "ThrottlingException"


def duration_count(handler: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "mme_operator_reconcile_duration_seconds_count", {"handler": handler, "outcome": outcome}
    )
    return value or 0.0


def in_flight(handler: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "mme_operator_reconciles_in_flight", {"handler": handler}
    )
    return value if value is not None else -1.0


def test_passes_are_timed_by_handler_and_outcome_and_counted_while_running() -> None:
    before = duration_count("reconcile", "retry"), duration_count("delete", "error")
    with metrics.timed_pass("reconcile") as timer:
        assert in_flight("reconcile") == 1
        timer.outcome = "retry"
    assert in_flight("reconcile") == 0
    with pytest.raises(RuntimeError), metrics.timed_pass("delete"):
        raise RuntimeError("a pass that raised")
    assert duration_count("reconcile", "retry") == before[0] + 1
    assert duration_count("delete", "error") == before[1] + 1
    assert in_flight("delete") == 0
    with pytest.raises(ValueError, match="unknown outcome 'invalid' of a delete pass"):
        metrics.record_pass("delete", "invalid", 1.0)
    with pytest.raises(ValueError, match="unknown handler"):
        metrics.record_pass("sync", "success", 1.0)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


def status(phase: Phase, *states: ModelState, declared: int | None = None) -> ModelEndpointStatus:
    models = [ModelStatus(name=f"m{i}", state=s) for i, s in enumerate(states)]
    return ModelEndpointStatus(
        phase=phase, models=models, model_count=len(models) if declared is None else declared
    )


def test_metrics_endpoint_serves_per_endpoint_series_until_the_endpoint_is_gone() -> None:
    metrics.record_pass("reconcile", "success", 1.5)
    metrics.BYTES_UPLOADED.inc(1024)
    available, failed = ModelState.AVAILABLE, ModelState.FAILED
    metrics.ENDPOINTS.record("uid-a", "ml", "llms", status(Phase.READY, available, available))
    metrics.ENDPOINTS.record("uid-b", "ml", "vision", status(Phase.CREATING, failed, declared=3))
    port = free_port()
    metrics.start_metrics_server(port, addr="127.0.0.1")
    text = scrape(port)

    for name in (
        "mme_operator_reconcile_duration_seconds_bucket",
        "mme_operator_reconciles_in_flight",
        "mme_operator_aws_calls_total",
        "mme_operator_aws_requests_total",
        "mme_operator_uploaded_bytes_total",
    ):
        assert f"\n{name}" in text, name
    assert 'handler="reconcile",le="0.01",outcome="success"' in text
    assert 'handler="reconcile",le="600.0",outcome="success"' in text
    assert 'mme_operator_endpoint_phase{name="llms",namespace="ml",phase="Ready"} 1.0' in text
    assert 'mme_operator_endpoint_phase{name="llms",namespace="ml",phase="Failed"} 0.0' in text
    assert 'mme_operator_endpoint_phase{name="vision",namespace="ml",phase="Creating"} 1.0' in text
    assert 'mme_operator_endpoint_models{name="llms",namespace="ml",state="Available"} 2.0' in text
    assert 'mme_operator_endpoint_models{name="vision",namespace="ml",state="Failed"} 1.0' in text
    assert 'mme_operator_endpoint_models_declared{name="vision",namespace="ml"} 3.0' in text
    # One-hot: one phase per endpoint at 1.
    ones = [
        line
        for line in text.splitlines()
        if line.startswith("mme_operator_endpoint_phase{") and line.endswith(" 1.0")
    ]
    assert len(ones) == 2
    # Only the operator's registry: no process/GC collectors of the global one.
    assert "python_gc_objects_collected_total" not in text

    metrics.ENDPOINTS.set_phase("uid-a", "ml", "llms", Phase.DELETING)
    text = scrape(port)
    assert 'mme_operator_endpoint_phase{name="llms",namespace="ml",phase="Deleting"} 1.0' in text
    assert 'mme_operator_endpoint_phase{name="llms",namespace="ml",phase="Ready"} 0.0' in text
    assert 'mme_operator_endpoint_models{name="llms",namespace="ml",state="Available"} 2.0' in text

    metrics.ENDPOINTS.forget("uid-a")
    metrics.ENDPOINTS.forget("uid-b")
    # A pass that was still running when its object went records nothing.
    metrics.ENDPOINTS.record("uid-a", "ml", "llms", status(Phase.READY, available))
    metrics.ENDPOINTS.set_phase("uid-b", "ml", "vision", Phase.DELETING)
    text = scrape(port)
    assert 'name="llms"' not in text
    assert 'name="vision"' not in text


def test_port_zero_disables_the_server() -> None:
    metrics.start_metrics_server(0)


def test_cache_signals_are_gauges_per_endpoint_with_a_one_hot_reason() -> None:
    from mme_operator.api.status import CacheStatus, Condition, ConditionStatus
    from prometheus_client import generate_latest

    thrashing = ModelEndpointStatus(
        cache=CacheStatus(
            read_at="2026-12-02T12:00:00Z",
            window_start="2026-12-02T11:45:00Z",
            cache_hit_ratio=0.1,
            loaded_models=3.0,
            model_load_wait_ms=850.0,
            model_unloads=27,
            gpu_memory_utilization_percent=75.0,
        ),
        conditions=[
            Condition(type="CacheHealthy", status=ConditionStatus.FALSE, reason="Thrashing")
        ],
    )
    metrics.CACHE.record("uid-c", "ml", "gauged", thrashing)

    text = generate_latest(metrics.REGISTRY).decode()

    labels = 'name="gauged",namespace="ml"'
    assert f"mme_operator_endpoint_cache_hit_ratio{{{labels}}} 0.1" in text
    assert f"mme_operator_endpoint_loaded_models{{{labels}}} 3.0" in text
    assert f"mme_operator_endpoint_model_load_wait_seconds{{{labels}}} 0.85" in text
    assert f"mme_operator_endpoint_model_unloads{{{labels}}} 27.0" in text
    assert f"mme_operator_endpoint_gpu_memory_utilization_ratio{{{labels}}} 0.75" in text
    # No data, no series (GPUUtilization had no data points in the window).
    assert f"mme_operator_endpoint_gpu_utilization_ratio{{{labels}}}" not in text
    condition = "mme_operator_endpoint_cache_condition{"
    reasons = [line for line in text.splitlines() if line.startswith(f"{condition}{labels},")]
    assert len(reasons) == len(metrics.CACHE_REASONS)
    assert f'{condition}{labels},reason="Thrashing"}} 1.0' in text
    assert f'{condition}{labels},reason="CacheEffective"}} 0.0' in text

    metrics.CACHE.forget("uid-c")
    metrics.CACHE.record("uid-c", "ml", "gauged", thrashing)  # a read that ended after
    assert 'name="gauged"' not in generate_latest(metrics.REGISTRY).decode()
