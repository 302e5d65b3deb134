"""A moto server on 127.0.0.1 and boto3 clients pointed at it over HTTP.

One server per session (starting one takes a while); each test starts from an empty
account via moto's reset API.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from mme_operator.sagemaker import SageMakerGateway, boto_config
from moto.server import ThreadedMotoServer

from tests.sagemaker.examples import REGION


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str) -> str:
    """The moto server's URL, its state emptied."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    return moto_url


def _client(service: str, url: str) -> Any:
    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=boto_config(max_attempts=2),
    )


@pytest.fixture
def sagemaker(aws: str) -> Any:
    return _client("sagemaker", aws)


@pytest.fixture
def autoscaling(aws: str) -> Any:
    return _client("application-autoscaling", aws)


@pytest.fixture
def gateway(sagemaker: Any) -> SageMakerGateway:
    return SageMakerGateway(sagemaker)
