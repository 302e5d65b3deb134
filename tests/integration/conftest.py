"""Fixtures for the integration tests: local AWS, local Kubernetes API and the operator.

Each test gets a fresh :class:`LocalEnvironment` with the operator running in the test's
event loop, an artifacts bucket and a bucket of model sources. Every boto3 call a test
makes runs in a thread (:meth:`World.aws`): the operator shares the event loop, and a
blocking call there would stall it.

moto's S3 lives in the process, not in one server, so bucket names are unique per test.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kopf
import pytest
from botocore.exceptions import ClientError
from mme_operator.api import PLURAL
from mme_operator.local.environment import KubeConnection, LocalEnvironment

from tests.cluster import ControlPlane, why_no_envtest

T = TypeVar("T")

ROLE = "arn:aws:iam::123456789012:role/sagemaker-mme"
NAMESPACE = "default"

# Tiny but real model files: a Python-backend model and a few bytes standing for ONNX.
MODEL_PY = """\
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([]) for _ in requests]
"""
FAKE_ONNX = b"\x08\x07\x12\x04fake-onnx-model"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(**overrides): operator settings for the integration environment"
    )
    config.addinivalue_line(
        "markers",
        "emulator: run against kmock's emulator, an API server without the CRD's schema (what "
        "the real one refuses, e.g. a spec that is not an object, reaches the operator there)",
    )


def unique(prefix: str) -> str:
    """A name no other test uses (moto's S3 is shared by the whole process)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any]:
    """The condition of ``type_`` in ``obj``'s status ({} when absent)."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def is_current(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s status reflects its current generation."""
    status = obj.get("status") or {}
    return bool(status.get("observedGeneration") == obj["metadata"].get("generation"))


@dataclass
class World:
    """The running environment plus what a user of it has at hand."""

    env: LocalEnvironment
    bucket: str
    """The artifacts bucket the ModelEndpoints upload to."""
    sources: str
    """A bucket holding the model sources (``s3://<sources>/...``)."""
    files: Path
    """A directory listed in the operator's ``file_roots`` (``file://`` sources)."""

    def __post_init__(self) -> None:
        self.s3 = self.env.aws.client("s3")
        self.sm = self.env.aws.client("sagemaker")

    async def aws(self, call: Callable[..., T], /, **kwargs: Any) -> T:
        """Run one boto3 call in a thread, off the operator's event loop."""
        return await asyncio.to_thread(functools.partial(call, **kwargs))

    @property
    def calls(self) -> Mapping[str, int]:
        return self.env.aws.calls

    # -- sources and artifacts ----------------------------------------------------------

    async def put_source(self, key: str, body: bytes | str) -> str:
        """Put a model file into the sources bucket; its ``s3://`` URI."""
        data = body.encode() if isinstance(body, str) else body
        await self.aws(self.s3.put_object, Bucket=self.sources, Key=key, Body=data)
        return f"s3://{self.sources}/{key}"

    async def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` in the artifacts bucket."""
        answer = await self.aws(self.s3.list_objects_v2, Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in answer.get("Contents", []))

    # -- SageMaker -----------------------------------------------------------------------

    async def describe(self, kind: str, name: str) -> dict[str, Any] | None:
        """``describe_<kind>`` (endpoint, endpoint_config, model) or None when not found."""
        call = getattr(self.sm, f"describe_{kind}")
        field = {"endpoint": "EndpointName", "endpoint_config": "EndpointConfigName"}
        try:
            found: dict[str, Any] = await self.aws(call, **{field.get(kind, "ModelName"): name})
        except ClientError as exc:
            error = exc.response["Error"]
            if error["Code"] == "ValidationException" and "Could not find" in error["Message"]:
                return None
            raise
        return found

    async def wait_endpoint(
        self, name: str, *statuses: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll DescribeEndpoint until it is in one of ``statuses``."""
        deadline = time.monotonic() + timeout
        found = None
        while time.monotonic() < deadline:
            found = await self.describe("endpoint", name)
            if found is not None and found["EndpointStatus"] in statuses:
                return found
            await asyncio.sleep(0.1)
        raise TimeoutError(f"endpoint {name} not in {statuses}: {found}")

    async def wait_endpoint_gone(self, name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.describe("endpoint", name) is None:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"endpoint {name} still exists after {timeout}s")

    async def scalable_targets(self, endpoint: str) -> list[dict[str, Any]]:
        """Application Auto Scaling's scalable targets on ``endpoint``'s variant."""
        client = self.env.aws.client("application-autoscaling")
        answer = await self.aws(
            client.describe_scalable_targets,
            ServiceNamespace="sagemaker",
            ResourceIds=[f"endpoint/{endpoint}/variant/AllTraffic"],
        )
        targets: list[dict[str, Any]] = answer["ScalableTargets"]
        return targets

    # -- the ModelEndpoint, as a user writes it ------------------------------------------

    def manifest(
        self,
        name: str,
        models: list[dict[str, Any]],
        *,
        annotations: Mapping[str, str] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        """A ModelEndpoint ``name`` serving ``models`` from this world's artifacts bucket."""
        metadata: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
        if annotations:
            metadata["annotations"] = dict(annotations)
        body: dict[str, Any] = {
            "region": "us-east-1",
            "executionRoleArn": ROLE,
            "artifacts": {"bucket": self.bucket, "prefix": f"mme/{name}/"},
            "instanceType": "ml.g5.xlarge",
            "instanceCount": 1,
            "models": models,
        }
        body.update(spec)
        return {
            "apiVersion": "mme-operator.io/v1alpha1",
            "kind": "ModelEndpoint",
            "metadata": metadata,
            "spec": body,
        }

    async def python_model(self, name: str) -> dict[str, Any]:
        """A Python-backend model whose ``model.py`` is in the sources bucket."""
        source = await self.put_source(f"{name}/model.py", MODEL_PY)
        return {
            "name": name,
            "source": source,
            "backend": "python",
            "maxBatchSize": 8,
            "inputs": [{"name": "INPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
            "outputs": [{"name": "OUTPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
            "instanceGroups": [{"count": 2, "kind": "KIND_GPU"}],
            "dynamicBatching": {"maxQueueDelayMicroseconds": 100, "preferredBatchSize": [4]},
        }

    async def onnx_model(self, name: str) -> dict[str, Any]:
        """An ONNX model (a few bytes standing for one) in the sources bucket."""
        source = await self.put_source(f"{name}/model.onnx", FAKE_ONNX)
        return {
            "name": name,
            "source": source,
            "platform": "onnxruntime_onnx",
            "maxBatchSize": 16,
            "instanceGroups": [{"count": 1, "kind": "KIND_GPU"}],
        }

    async def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return await self.env.apply(doc)

    async def ready(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        return await self.env.wait_ready(name, NAMESPACE, timeout=timeout)

    async def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        """Wait until the ModelEndpoint exists and ``predicate`` holds for it."""
        found = await self.env.wait_for(
            name,
            lambda obj: obj is not None and predicate(obj),
            namespace=NAMESPACE,
            timeout=timeout,
            what=what,
        )
        assert found is not None
        return found

    async def wait_gone(self, name: str, timeout: float = 20.0) -> None:
        await self.env.wait_for(
            name, lambda obj: obj is None, namespace=NAMESPACE, timeout=timeout, what="deletion"
        )

    async def events(self, name: str) -> list[dict[str, Any]]:
        """Kubernetes events about the object ``name``."""
        path = f"/api/v1/namespaces/{NAMESPACE}/events"
        async with self.env.session.get(path) as response:
            response.raise_for_status()
            items = (await response.json()).get("items", [])
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0
) -> None:
    """Poll ``check`` until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what} not reached in {timeout}s")


def clean_namespace(plane: ControlPlane, namespace: str) -> None:
    """Remove every ModelEndpoint (finalizers dropped: its operator is gone), event and
    models ConfigMap.

    envtest runs no garbage collector, so a ModelEndpoint's ``<name>-models`` ConfigMap
    outlives it here; left behind, it would be another owner's ConfigMap to the next test's
    ModelEndpoint of the same name (which then refuses to write it).
    """
    plane.kubectl("delete", PLURAL, "--all", "-n", namespace, "--wait=false")
    names = plane.kubectl("get", PLURAL, "-n", namespace, "-o", "name").stdout.split()
    for name in names:
        patch = '{"metadata": {"finalizers": null}}'
        plane.kubectl("patch", name, "-n", namespace, "--type=merge", "-p", patch, check=False)
    for name in names:
        plane.wait_gone(name, "-n", namespace)
    plane.kubectl("delete", "events", "--all", "-n", namespace)
    managed = "app.kubernetes.io/managed-by=mme-operator"
    plane.kubectl("delete", "configmaps", "-l", managed, "-n", namespace)


def kube_connection(request: pytest.FixtureRequest) -> tuple[KubeConnection, ControlPlane] | None:
    """The real API server and the operator's chart-RBAC login; None: the emulator.

    The emulator is the fallback only where the real server cannot be built (no Go) and
    not in CI, or where a test asks for it (marker ``emulator``).
    """
    if request.node.get_closest_marker("emulator"):
        return None
    if why_no_envtest() is not None and not os.environ.get("CI"):
        return None
    plane: ControlPlane = request.getfixturevalue("control_plane")
    login: kopf.ConnectionInfo = request.getfixturevalue("operator_login")
    connection = KubeConnection(
        server=plane.server, client_ssl=plane.admin_ssl(), operator_login=login
    )
    return connection, plane


@pytest.fixture
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[World]:
    """A started LocalEnvironment (operator running), an artifacts and a sources bucket.

    Kubernetes is the session's real API server (the operator logged in with the chart's
    RBAC: any 403 it meets fails the test); each test leaves the namespace empty for the next.
    """
    marker = request.node.get_closest_marker("settings")
    overrides: dict[str, Any] = {"file_roots": str(tmp_path)}
    overrides.update(marker.kwargs if marker else {})
    real = kube_connection(request)
    kube = real[0] if real else None
    try:
        async with LocalEnvironment(
            endpoint_delay=0.3, settings_overrides=overrides, kube=kube
        ) as env:
            world = World(env, unique("artifacts"), unique("src"), tmp_path)
            await world.aws(world.s3.create_bucket, Bucket=world.bucket)
            await world.aws(world.s3.create_bucket, Bucket=world.sources)
            await env.start_operator()
            yield world
    finally:
        if real is not None:
            await asyncio.to_thread(clean_namespace, real[1], NAMESPACE)
    refused = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage().lower()]
    if refused:
        pytest.fail(f"the API server refused the operator (chart RBAC): {refused[0]}")
