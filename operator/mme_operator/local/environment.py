"""Everything the operator talks to, on 127.0.0.1: the demo and the integration tests.

:class:`LocalEnvironment` starts the local SageMaker/S3 (:class:`LocalAWS`), a local
Kubernetes API (:class:`KubeEmulator`) with our CRD installed, and the operator itself
(kopf, in a thread with its own event loop), all speaking their real protocols over
HTTP. Nothing is patched: the operator runs the same code as in a cluster, with other
endpoints and dummy credentials.

Given a :class:`KubeConnection`, the environment uses that (real) API server instead of
the emulator: the integration tests run it against etcd + kube-apiserver, the operator
logging in as the chart's ServiceAccount and the test side as an administrator.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock
import kopf

from mme_operator.api import GROUP, PLURAL, VERSION
from mme_operator.api.crd import build_crd
from mme_operator.local.kube_api import KubeEmulator
from mme_operator.local.server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS
from mme_operator.runner import OperatorOptions, operator_thread
from mme_operator.settings import Settings

API = f"/apis/{GROUP}/{VERSION}"


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new`` (nulls remove keys)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


class KubeApiError(Exception):
    """The API server refused a request; ``str()`` is its own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    text = await response.text()
    try:
        message = json.loads(text).get("message") or text
    except (ValueError, AttributeError):
        message = text
    raise KubeApiError(response.status, f"{response.status}: {message}")


@dataclass(frozen=True)
class KubeConnection:
    """A real Kubernetes API server, and who logs in to it on each side."""

    server: str
    client_ssl: ssl.SSLContext
    """TLS of the user's side (trusting the server; a client certificate for its identity)."""
    operator_login: kopf.ConnectionInfo
    """The operator's identity (e.g. a ServiceAccount token)."""
    namespaces: tuple[str, ...] = ()
    """The namespaces the operator watches; empty for all."""


@dataclass
class LocalEnvironment:
    """Local AWS + local Kubernetes API + the operator, as an async context manager."""

    endpoint_delay: float = 0.5
    settings_overrides: Mapping[str, Any] = field(default_factory=dict)
    # InvokeEndpoint on a real tritonserver: None when installed, True always, False never.
    triton: bool | None = None
    kube: KubeConnection | None = None
    """A real API server to use; None starts the emulator."""
    aws: LocalAWS = field(init=False)
    settings: Settings = field(init=False)
    _k8s: KubeEmulator | None = field(default=None, init=False)
    _server: kmock.Server | None = field(default=None, init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _operator: threading.Thread | None = field(default=None, init=False)

    @property
    def k8s_url(self) -> str:
        if self.kube is not None:
            return self.kube.server
        assert self._server is not None
        return str(self._server.url).rstrip("/")

    @property
    def kube_writes(self) -> Counter[str]:
        """Writes the local Kubernetes API received, by action and resource."""
        assert self._k8s is not None
        return self._k8s.writes.snapshot()

    def reset_kube_writes(self) -> None:
        assert self._k8s is not None
        self._k8s.writes.reset()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the environment is not started"
        return self._session

    async def __aenter__(self) -> LocalEnvironment:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise

    async def _start(self) -> LocalEnvironment:
        # boto3's default credential chain reads these: the local AWS accepts any signature.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_KEY)
        self.aws = LocalAWS(endpoint_delay=self.endpoint_delay, triton=self.triton)
        url = await asyncio.to_thread(self.aws.start)
        defaults: dict[str, Any] = {
            "aws_endpoint_url": url,
            "poll_interval_seconds": 0.5,
            "retry_delay_seconds": 1.0,
            "drift_check_interval_seconds": 3600.0,
            "metrics_port": 0,
            "health_port": 0,
        }
        self.settings = Settings(**{**defaults, **self.settings_overrides})
        if self.kube is not None:
            connector = aiohttp.TCPConnector(ssl=self.kube.client_ssl)
            self._session = aiohttp.ClientSession(self.kube.server, connector=connector)
            return self
        self._k8s = KubeEmulator()
        await self._k8s.__aenter__()
        self._server = kmock.Server(self._k8s)
        await self._server.__aenter__()
        self._session = aiohttp.ClientSession(self.k8s_url)
        await self.install_crd()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_operator()
        if hasattr(self, "aws"):
            await asyncio.to_thread(self.aws.stop)
        if self._session is not None:
            await self._session.close()
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        if self._k8s is not None:
            await self._k8s.__aexit__(None, None, None)

    # -- the Kubernetes side, as kubectl would do it ----------------------------------

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        async with self.session.post(path, json=body) as response:
            await _raise_for_status(response)
            created: dict[str, Any] = await response.json()
            return created

    async def install_crd(self) -> None:
        await self.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", build_crd())

    async def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        async with self.session.get(f"{API}/namespaces/{namespace}/{PLURAL}/{name}") as response:
            if response.status == 404:
                return None
            await _raise_for_status(response)
            found: dict[str, Any] = await response.json()
            return found

    async def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """``kubectl apply``: create, or patch spec/labels/annotations to match ``doc``."""
        meta = doc["metadata"]
        namespace = meta.get("namespace", "default")
        current = await self.get(meta["name"], namespace)
        if current is None:
            return await self.create(f"{API}/namespaces/{namespace}/{PLURAL}", doc)
        patch = {
            "spec": merge_patch(current.get("spec", {}), doc["spec"]),
            "metadata": {
                key: merge_patch(current["metadata"].get(key, {}), meta[key])
                for key in ("labels", "annotations")
                if key in meta
            },
        }
        path = f"{API}/namespaces/{namespace}/{PLURAL}/{meta['name']}"
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self.session.patch(path, json=patch, headers=headers) as response:
            await _raise_for_status(response)
            patched: dict[str, Any] = await response.json()
            return patched

    async def delete(self, name: str, namespace: str = "default") -> None:
        async with self.session.delete(f"{API}/namespaces/{namespace}/{PLURAL}/{name}") as response:
            await _raise_for_status(response)

    async def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        *,
        namespace: str = "default",
        timeout: float = 30.0,
        what: str = "the condition",
    ) -> dict[str, Any] | None:
        """Poll the object until ``predicate(obj)`` holds; raise TimeoutError with its last state."""
        deadline = time.monotonic() + timeout
        obj = None
        while time.monotonic() < deadline:
            obj = await self.get(name, namespace)
            if predicate(obj):
                return obj
            await asyncio.sleep(0.1)
        status = (obj or {}).get("status")
        raise TimeoutError(f"{namespace}/{name}: {what} not reached in {timeout}s; status={status}")

    async def wait_ready(
        self, name: str, namespace: str = "default", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until the ModelEndpoint is Ready for its current generation."""

        def ready(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            status = obj.get("status") or {}
            return status.get("phase") == "Ready" and status.get("observedGeneration") == obj[
                "metadata"
            ].get("generation")

        found = await self.wait_for(name, ready, namespace=namespace, timeout=timeout, what="Ready")
        assert found is not None
        return found

    # -- the operator ------------------------------------------------------------------

    async def start_operator(self) -> None:
        """Run the operator until :meth:`stop_operator`, in a thread with its own event loop.

        Not in this event loop: when kopf stops, it cancels every task created after it
        started, which here would include the caller's (a test fixture's teardown, the
        Kubernetes API's request handlers).
        """
        ready = threading.Event()
        if self.kube is not None:
            options = OperatorOptions(
                login=self.kube.operator_login,
                namespaces=self.kube.namespaces,
                ready_flag=ready,
            )
        else:
            options = OperatorOptions(
                login=kopf.ConnectionInfo(server=self.k8s_url, scheme="Bearer", token="local"),
                ready_flag=ready,
            )
        self._operator, self._stop = operator_thread(self.settings, options)
        if not await asyncio.to_thread(ready.wait, 30):
            await self.stop_operator()
            raise RuntimeError("the operator did not start within 30s")

    async def stop_operator(self) -> None:
        if self._operator is not None:
            self._stop.set()
            await asyncio.to_thread(self._operator.join, 30)
            self._operator = None
