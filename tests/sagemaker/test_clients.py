"""The AWS clients are shared by every concurrent reconcile: their pools must hold them all."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
import pytest
from mme_operator.runner import OperatorOptions, build_registry
from mme_operator.sagemaker import make_clients
from mme_operator.settings import S3_HEAD_CONCURRENCY, Settings

from tests.sagemaker.examples import REGION

RECONCILES = 3
ROUNDS = 4


def widest_reconciles_at_once(s3: Any, bucket: str) -> None:
    """RECONCILES threads, each HEADing with S3_HEAD_CONCURRENCY workers, as a listing does."""
    keys = [f"mme/m{i}.tar.gz" for i in range(S3_HEAD_CONCURRENCY)]
    start = threading.Barrier(RECONCILES)

    def reconcile() -> None:
        start.wait()
        with ThreadPoolExecutor(max_workers=S3_HEAD_CONCURRENCY) as pool:
            for _ in range(ROUNDS):
                list(pool.map(lambda key: s3.head_object(Bucket=bucket, Key=key), keys))

    with ThreadPoolExecutor(max_workers=RECONCILES) as reconciles:
        for future in [reconciles.submit(reconcile) for _ in range(RECONCILES)]:
            future.result()
    for key in keys:
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 1


def pool_full_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("Connection pool is full" in r.getMessage() for r in caplog.records)


@pytest.fixture
def settings(aws: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Settings(aws_endpoint_url=aws, max_concurrent_reconciles=RECONCILES)


def test_pool_holds_every_concurrent_reconcile_at_its_widest(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = make_clients(REGION, settings).s3
    s3.create_bucket(Bucket="models")
    for i in range(S3_HEAD_CONCURRENCY):
        s3.put_object(Bucket="models", Key=f"mme/m{i}.tar.gz", Body=b"x")
    # And one connection per drift check, which runs in workers of its own.
    wanted = RECONCILES * S3_HEAD_CONCURRENCY + settings.drift_check_concurrency
    assert s3.meta.config.max_pool_connections == wanted
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")

    widest_reconciles_at_once(s3, "models")

    assert pool_full_warnings(caplog) == 0


def test_botocore_default_pool_would_discard_connections(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The same load on botocore's default pool (10): what the sizing prevents.
    small = settings.model_copy(
        update={
            "max_concurrent_reconciles": 1,
            "upload_concurrency": 1,
            "drift_check_concurrency": 1,
        }
    )
    s3 = make_clients(REGION, small).s3
    assert s3.meta.config.max_pool_connections == S3_HEAD_CONCURRENCY + 1
    s3.create_bucket(Bucket="models")
    for i in range(S3_HEAD_CONCURRENCY):
        s3.put_object(Bucket="models", Key=f"mme/m{i}.tar.gz", Body=b"x")
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")

    # Whether 48 threads overlap on 16 connections in one burst depends on the scheduler
    # (moto answers fast); a few bursts make the overlap certain without changing the load.
    for _ in range(10):
        widest_reconciles_at_once(s3, "models")
        if pool_full_warnings(caplog):
            break

    assert pool_full_warnings(caplog) > 0


def test_pool_follows_the_upload_parts_when_they_are_wider() -> None:
    settings = Settings(max_concurrent_reconciles=5, upload_concurrency=20)
    assert settings.aws_max_pool_connections == 5 * 20 + settings.drift_check_concurrency


def test_kopf_runs_as_many_handler_threads_as_configured() -> None:
    settings = Settings(max_concurrent_reconciles=5)
    registry = build_registry(settings, OperatorOptions())
    operator_settings = kopf.OperatorSettings()
    # kopf offers no public way to list a registry's startup handlers.
    for handler in registry._activities.get_all_handlers():
        if handler.activity == "startup":
            handler.fn(settings=operator_settings, logger=logging.getLogger("test"))

    assert operator_settings.execution.max_workers == 5
