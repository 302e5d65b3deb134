"""The fault suite's world: every part in its own process, talking over the wire.

- the Kubernetes API: a real kube-apiserver (envtest), reached over HTTPS as its admin
  (the client certificate of its kubeconfig), JSON in and out;
- AWS: ``mme-operator local-aws`` (local SageMaker + moto's S3) in its own process, its
  faults set over ``POST /_local/faults``;
- the operator: ``mme-operator run`` in its own process, SIGKILLed and restarted at will.

:func:`inventory` is how every scenario ends: what Kubernetes, SageMaker and S3 hold,
checked against each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import ControlPlane

GROUP, VERSION, PLURAL = "mme-operator.io", "v1alpha1", "modelendpoints"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-mme"
OWNER_UID_TAG = "mme-operator.io/owner-uid"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
MODEL_PY = b"""\
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([]) for _ in requests]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_until(check: Callable[[], Any], what: str, timeout: float, every: float = 0.3) -> Any:
    """Poll ``check`` until it returns something true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout:g}s")
        time.sleep(every)


def _mme(*args: str) -> list[str]:
    return [sys.executable, "-m", "mme_operator.cli", *args]


class LocalAwsProcess:
    """``mme-operator local-aws`` in its own process (SageMaker + S3 on one port)."""

    def __init__(self, workdir: Path, endpoint_delay: float = 0.5) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "local-aws.log"
        env = {**os.environ, **CREDENTIALS}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                _mme(
                    "local-aws",
                    "--port",
                    str(self.port),
                    "--endpoint-delay",
                    str(endpoint_delay),
                    "--triton",
                    "off",
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until(self._healthy, "local-aws answering", timeout=30)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"local-aws exited: {self.log.read_text()[-2000:]}")
        try:
            self.admin("GET", "/_local/health")
        except OSError:
            return False
        return True

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def fault(self, **rule: Any) -> None:
        """Add one fault rule: ``fault(action="throttle", percent=30)``."""
        self.admin("POST", "/_local/faults", rule)

    def clear_faults(self) -> None:
        self.admin("DELETE", "/_local/faults")

    def injected(self) -> dict[str, int]:
        found: dict[str, int] = self.admin("GET", "/_local/faults").get("injected", {})
        return found

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        ).client(
            service,  # type: ignore[call-overload]
            region_name="us-east-1",
            endpoint_url=self.url,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class OperatorProcess:
    """``mme-operator run`` as a subprocess; killed (SIGKILL) and restarted by the scenarios."""

    kubeconfig: Path
    aws_url: str
    workdir: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    crashes: list[str] = field(default_factory=list)
    readiness_port: int = 0
    health_port: int = 0
    metrics_port: int = 0

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            **CREDENTIALS,
            "KUBECONFIG": str(self.kubeconfig),
            "MME_AWS_ENDPOINT_URL": self.aws_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MME_METRICS_PORT": str(self.metrics_port),
            "MME_HEALTH_PORT": str(self.health_port),
            "MME_READINESS_PORT": str(self.readiness_port),
            "MME_POLL_INTERVAL_SECONDS": "0.5",
            "MME_RETRY_DELAY_SECONDS": "0.5",
            "MME_DRIFT_CHECK_INTERVAL_SECONDS": "3600",
            "MME_ARCHIVE_GRACE_PERIOD_SECONDS": "0",
            "MME_AWS_READ_TIMEOUT_SECONDS": "2",
            "MME_WORK_DIR": str(self.workdir),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env.update(self.settings)
        return env

    @property
    def log(self) -> Path:
        return self.workdir / f"operator-{self.starts}.log"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        self.health_port = self.health_port or free_port()
        self.readiness_port = self.readiness_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                _mme("run", "--all-namespaces", "--standalone"),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finalizer released, whatever it was doing left half done."""
        assert self.process is not None
        self._check_alive()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def restart(self) -> None:
        self.kill()
        self.start()

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            self.crashes.append(f"exited with {self.process.returncode}: {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """One scrape of the operator's ``/metrics``: value by (sample name, labels)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def tracebacks(self) -> list[str]:
        """Log files that hold a traceback (a handler that crashed is a crash)."""
        logs = sorted(self.workdir.glob("operator-*.log"))
        return [str(p) for p in logs if "Traceback (most recent call last)" in p.read_text()]


class Cluster:
    """The ModelEndpoints of one namespace, through the real API server (as its admin)."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        self.server = plane.server
        self.ssl = plane.admin_ssl()
        self.namespace = namespace
        self.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}}, allow=409)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        allow: int | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        """One JSON call; None when it answered ``allow`` (e.g. 404), else raise on >= 400."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self.ssl, timeout=30) as response:
                found: dict[str, Any] = json.loads(response.read())
                return found
        except urllib.error.HTTPError as error:
            if error.code == allow:
                return None
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:300]!r}") from None

    @property
    def _objects(self) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}"

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        created = self.call("POST", self._objects, doc)
        assert created is not None
        return created

    def patch_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        self.call(
            "PATCH",
            f"{self._objects}/{name}",
            {"spec": dict(spec)},
            content_type="application/merge-patch+json",
        )

    def get(self, name: str) -> dict[str, Any] | None:
        return self.call("GET", f"{self._objects}/{name}", allow=404)

    def list(self) -> list[dict[str, Any]]:
        found = self.call("GET", self._objects)
        assert found is not None
        return list(found["items"])

    def delete(self, name: str) -> None:
        self.call("DELETE", f"{self._objects}/{name}", allow=404)


def condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def converged(obj: Mapping[str, Any] | None) -> bool:
    """Ready for its current generation."""
    if obj is None:
        return False
    status = obj.get("status") or {}
    return bool(
        status.get("phase") == "Ready"
        and status.get("observedGeneration") == obj["metadata"].get("generation")
    )


@dataclass
class World:
    """One scenario's world: a namespace, buckets, local AWS and the operator process."""

    cluster: Cluster
    aws: LocalAwsProcess
    operator: OperatorProcess
    bucket: str
    sources: str

    def __post_init__(self) -> None:
        self.s3 = self.aws.client("s3")
        self.sm = self.aws.client("sagemaker")
        for bucket in (self.bucket, self.sources):
            self.s3.create_bucket(Bucket=bucket)

    def python_model(self, name: str, version: int = 1) -> dict[str, Any]:
        key = f"{name}/v{version}/model.py"
        self.s3.put_object(Bucket=self.sources, Key=key, Body=MODEL_PY + b"#%d\n" % version)
        return {
            "name": name,
            "source": f"s3://{self.sources}/{key}",
            "backend": "python",
            "maxBatchSize": 4,
            "inputs": [{"name": "INPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
            "outputs": [{"name": "OUTPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
        }

    def manifest(self, name: str, models: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
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
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelEndpoint",
            "metadata": {"name": name, "namespace": self.cluster.namespace},
            "spec": body,
        }

    def wait_converged(self, names: list[str], timeout: float) -> None:
        def done() -> bool:
            return all(converged(self.cluster.get(n)) for n in names)

        wait_until(done, f"{names} Ready", timeout)

    def wait_gone(self, names: list[str], timeout: float) -> None:
        wait_until(
            lambda: all(self.cluster.get(n) is None for n in names), f"{names} gone", timeout
        )

    # -- what AWS holds ----------------------------------------------------------------

    def _tags(self, arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.sm.list_tags(ResourceArn=arn)["Tags"]}

    def sagemaker_resources(self) -> Iterator[tuple[str, str, str | None]]:
        """(kind, name, owner uid tag) of every SageMaker resource."""
        for e in self.sm.list_endpoints(MaxResults=100)["Endpoints"]:
            yield "endpoint", e["EndpointName"], self._tags(e["EndpointArn"]).get(OWNER_UID_TAG)
        for c in self.sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]:
            arn = c["EndpointConfigArn"]
            yield "config", c["EndpointConfigName"], self._tags(arn).get(OWNER_UID_TAG)
        for m in self.sm.list_models(MaxResults=100)["Models"]:
            yield "model", m["ModelName"], self._tags(m["ModelArn"]).get(OWNER_UID_TAG)

    def archive_keys(self) -> set[str]:
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="mme/")
        return {o["Key"] for o in found.get("Contents", [])}


@dataclass
class Inventory:
    """How a scenario ended. Every count but ``converged`` / ``gone`` must be zero."""

    converged: int = 0
    gone: int = 0
    not_converged: list[str] = field(default_factory=list)
    stuck_finalizers: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    foreign_touched: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.not_converged
            or self.stuck_finalizers
            or self.lost
            or self.orphaned
            or self.duplicated
            or self.foreign_touched
        )

    def problems(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, list) and v}


def inventory(
    world: World,
    names: list[str],
    foreign: Mapping[str, str] | None = None,
    foreign_keys: set[str] | None = None,
) -> Inventory:
    """Check every CR of ``names`` against SageMaker and S3.

    A CR is converged (Ready for its generation) or gone; gone leaves nothing tagged with its
    uid and no archive under its prefix; converged has exactly its endpoint, config and model
    (tagged with its uid) and exactly the archives its status names. ``foreign``: resources
    (``kind/name`` -> owner tag or "") that are not ours and must still be there, untouched;
    ``foreign_keys``: the same for objects in the artifacts bucket.
    """
    found = Inventory()
    live: dict[str, dict[str, Any]] = {}
    for name in names:
        obj = world.cluster.get(name)
        if obj is None:
            found.gone += 1
        elif obj["metadata"].get("deletionTimestamp"):
            found.stuck_finalizers.append(name)
        elif converged(obj):
            found.converged += 1
            live[obj["metadata"]["uid"]] = obj
        else:
            found.not_converged.append(f"{name}: {(obj.get('status') or {}).get('message')}")

    resources = list(world.sagemaker_resources())
    foreign = dict(foreign or {})
    by_owner: dict[str, list[tuple[str, str]]] = {}
    for kind, name, owner in resources:
        if f"{kind}/{name}" in foreign:
            if (owner or "") != foreign.pop(f"{kind}/{name}"):
                found.foreign_touched.append(f"{kind}/{name} retagged")
            continue
        if owner not in live:
            found.orphaned.append(f"{kind}/{name} (owner {owner})")
            continue
        by_owner.setdefault(owner, []).append((kind, name))
    found.foreign_touched.extend(f"{key} deleted" for key in foreign)

    keys = world.archive_keys()
    wanted_keys: set[str] = set()
    for uid, obj in live.items():
        status = obj["status"]
        mine = by_owner.get(uid, [])
        expected = {
            ("endpoint", status.get("endpointName")),
            ("config", status.get("endpointConfigName")),
        }
        for kind in ("endpoint", "config", "model"):
            of_kind = [n for k, n in mine if k == kind]
            if len(of_kind) > 1:
                found.duplicated.append(f"{obj['metadata']['name']}: {kind}s {of_kind}")
        for kind, name in expected:
            if (kind, name) not in mine:
                found.lost.append(f"{obj['metadata']['name']}: {kind} {name}")
        if not any(k == "model" for k, _ in mine):
            found.lost.append(f"{obj['metadata']['name']}: model")
        for model in status.get("models") or []:
            if model.get("servingS3Key"):  # serves while the model's new archive has not loaded
                wanted_keys.add(model["servingS3Key"])
            key = model.get("s3Key")
            if key:
                wanted_keys.add(key)
                if key not in keys:
                    found.lost.append(f"{obj['metadata']['name']}: archive {key}")
    for key in foreign_keys or set():
        if key not in keys:
            found.foreign_touched.append(f"archive {key} deleted")
    found.orphaned.extend(
        f"archive {k}" for k in sorted(keys - wanted_keys - (foreign_keys or set()))
    )
    return found


def settle(world: World, names: list[str], timeout: float) -> Inventory:
    """Wait until the inventory is clean (superseded resources go one pass after Ready)."""
    last = Inventory()

    def clean() -> bool:
        nonlocal last
        last = inventory(world, names)
        return last.clean

    with contextlib.suppress(TimeoutError):
        wait_until(clean, "a clean inventory", timeout, every=0.5)
    return last
