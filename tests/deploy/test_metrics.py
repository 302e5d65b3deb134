"""Prometheus metrics: AWS calls counted by the botocore hook against a real (moto) S3 server,
and the metrics endpoint served over HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from mme_operator import metrics
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


def s3_client(endpoint_url: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )


def calls(operation: str, error_code: str = "", service: str = "s3") -> float:
    value = metrics.REGISTRY.get_sample_value(
        "mme_aws_calls_total",
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
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()
    assert calls("ListBuckets", "EndpointConnectionError") == before + 1


def test_metrics_endpoint_serves_the_operators_metrics() -> None:
    metrics.record_reconcile("success", 1.5)
    metrics.record_reconcile("invalid", 0.01)
    metrics.BYTES_UPLOADED.inc(1024)
    metrics.set_endpoint_phases({"Ready": 2, "Creating": 1})
    port = free_port()
    metrics.start_metrics_server(port, addr="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    for name in (
        "mme_reconciles_total",
        "mme_aws_calls_total",
        "mme_reconcile_duration_seconds_bucket",
        "mme_endpoints",
        "mme_bytes_uploaded_total",
    ):
        assert f"\n{name}" in text, name
    assert 'mme_endpoints{phase="Ready"} 2.0' in text
    assert 'mme_endpoints{phase="Failed"} 0.0' in text
    assert 'mme_reconciles_total{result="retry"} 0.0' in text
    # Only the operator's registry: no process/GC collectors of the global one.
    assert "python_gc_objects_collected_total" not in text


def test_port_zero_disables_the_server_and_unknown_results_are_refused() -> None:
    metrics.start_metrics_server(0)
    with pytest.raises(ValueError, match="unknown reconcile result"):
        metrics.record_reconcile("fine", 1.0)
