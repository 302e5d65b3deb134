"""The AWS clients of one endpoint's region, made one way everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from mme_operator.metrics import instrument_session
from mme_operator.sagemaker.botocore_models import session_lock, shared_session
from mme_operator.sagemaker.errors import boto_config
from mme_operator.sagemaker.gateway import SageMakerGateway
from mme_operator.sagemaker.stopping import stop_with_operator
from mme_operator.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling.client import ApplicationAutoScalingClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker_runtime.client import SageMakerRuntimeClient


@dataclass(frozen=True)
class AwsClients:
    """S3, SageMaker control plane and runtime, and Application Auto Scaling clients."""

    s3: S3Client
    sagemaker: SageMakerClient
    runtime: SageMakerRuntimeClient
    autoscaling: ApplicationAutoScalingClient
    throttle_attempts: int = 1
    """How often the gateway tries a SageMaker call AWS throttles (after botocore's retries)."""

    def gateway(self, *, cache_reads: bool = False) -> SageMakerGateway:
        """A SageMakerGateway over these clients (invoke included).

        ``cache_reads``: answer a describe / tags read asked twice from the first answer (for
        one reconcile pass, which never waits for anything to change).
        """
        return SageMakerGateway(
            self.sagemaker,
            self.runtime,
            cache_reads=cache_reads,
            throttle_attempts=self.throttle_attempts,
        )


def make_clients(
    region: str, settings: Settings, session: boto3.session.Session | None = None
) -> AwsClients:
    """Clients for ``region``; every call goes to ``settings.aws_endpoint_url`` when set.

    Credentials come from botocore's usual chain (IRSA, Pod Identity, environment).
    Without ``session``, the process's shared session (one decoded copy of each service
    model for every region, SageMaker's trimmed: :mod:`.botocore_models`). Either way every
    call the clients make is counted in the operator's metrics.
    """
    if session is not None:
        return _make_clients(region, settings, instrument_session(session))
    shared = shared_session()
    with session_lock():
        return _make_clients(region, settings, shared)


def _make_clients(region: str, settings: Settings, session: boto3.session.Session) -> AwsClients:
    # Clients are shared by every concurrent reconcile of the region.
    config = boto_config(
        max_attempts=settings.aws_max_attempts,
        mode=settings.aws_retry_mode,
        read_timeout_seconds=settings.aws_read_timeout_seconds,
    ).merge(Config(max_pool_connections=settings.aws_max_pool_connections))
    url = settings.aws_endpoint_url
    # A local endpoint has no per-bucket DNS names, so S3 is addressed by path there.
    s3_config = config.merge(Config(s3={"addressing_style": "path"})) if url else config
    # The runtime serves warm-up invocations only: one attempt each, since a failed warm-up
    # is a condition that the next pass retries, and backing off through ten attempts of a
    # cold or failing model would hold the whole reconcile for minutes.
    runtime_config = config.merge(Config(retries={"mode": "standard", "max_attempts": 1}))
    clients = AwsClients(
        s3=session.client("s3", region_name=region, endpoint_url=url, config=s3_config),
        sagemaker=session.client("sagemaker", region_name=region, endpoint_url=url, config=config),
        runtime=session.client(
            "sagemaker-runtime", region_name=region, endpoint_url=url, config=runtime_config
        ),
        autoscaling=session.client(
            "application-autoscaling", region_name=region, endpoint_url=url, config=config
        ),
        throttle_attempts=settings.aws_max_attempts,
    )
    for client in (clients.s3, clients.sagemaker, clients.runtime, clients.autoscaling):
        stop_with_operator(client)  # a stopping operator makes no new call or retry
    return clients
