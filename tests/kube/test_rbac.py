"""The chart's RBAC, for real: the operator runs with the ServiceAccount token alone.

The chart is rendered with ``helm template`` in each mode (all namespaces; one watched
namespace); its ServiceAccount, (Cluster)Roles and bindings go to the real API server; the
operator logs in with a token from the TokenRequest API and takes a ModelEndpoint through
create, update and delete. Any 403 (a log line of kopf's, or a failed step) fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import kopf
import pytest
from mme_operator.local.environment import KubeConnection, LocalEnvironment

from tests.cluster import ControlPlane, rbac_documents, render_chart
from tests.integration.conftest import MODEL_PY, ROLE

pytestmark = pytest.mark.envtest


def forbidden_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines that say the API server refused the operator something."""
    lines = [record.getMessage() for record in caplog.records]
    return [line for line in lines if "status=403" in line or "forbidden" in line.lower()]


def install_rbac(plane: ControlPlane, helm: str, namespace: str, watched: str = "") -> str:
    """Apply the chart's RBAC (release in ``namespace``, watching ``watched`` or all); a
    token of its ServiceAccount."""
    values = []
    for each in (namespace, watched):
        if each:
            plane.ensure_namespace(each)
    if watched:
        values.append(f"watchNamespace={watched}")
    rbac = rbac_documents(render_chart(helm, "mme-operator", namespace, *values))
    plane.apply(rbac)
    account = next(doc for doc in rbac if doc["kind"] == "ServiceAccount")
    return plane.token(account["metadata"]["name"], namespace)


def manifest(name: str, namespace: str, bucket: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": ROLE,
            "artifacts": {"bucket": bucket, "prefix": f"mme/{name}/"},
            "instanceType": "ml.g5.xlarge",
            "models": [
                {
                    "name": "echo",
                    "source": source,
                    "backend": "python",
                    "maxBatchSize": 4,
                    "inputs": [{"name": "INPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
                    "outputs": [{"name": "OUTPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
                }
            ],
        },
    }


async def create_update_delete(
    plane: ControlPlane, token: str, watched: tuple[str, ...], namespace: str, tmp_path: Path
) -> None:
    """The operator (logged in with ``token``) takes one ModelEndpoint through its life."""
    login = kopf.ConnectionInfo(
        server=plane.server, ca_path=str(plane.ca), token=token, scheme="Bearer"
    )
    kube = KubeConnection(plane.server, plane.admin_ssl(), login, namespaces=watched)
    plane.ensure_namespace(namespace)
    name = f"rbac-{uuid.uuid4().hex[:6]}"
    overrides = {"file_roots": str(tmp_path)}
    async with LocalEnvironment(endpoint_delay=0.2, settings_overrides=overrides, kube=kube) as env:
        s3 = env.aws.client("s3")
        bucket = f"rbac-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(s3.create_bucket, Bucket=bucket)
        await asyncio.to_thread(
            s3.put_object, Bucket=bucket, Key="src/model.py", Body=MODEL_PY.encode()
        )
        await env.start_operator()

        doc = manifest(name, namespace, bucket, f"s3://{bucket}/src/model.py")
        await env.apply(doc)
        first = await env.wait_ready(name, namespace, timeout=30)
        # The operator wrote the clients' ConfigMap with only the chart's permissions.
        mapping = plane.get("configmap", f"{name}-models", "-n", namespace)
        assert mapping["data"]["echo"] == first["status"]["models"][0]["targetModel"]
        assert mapping["metadata"]["ownerReferences"][0]["uid"] == first["metadata"]["uid"]
        doc["spec"]["instanceType"] = "ml.g5.2xlarge"
        await env.apply(doc)
        second = await env.wait_ready(name, namespace, timeout=30)
        assert second["status"]["endpointConfigName"] != first["status"]["endpointConfigName"]

        await env.delete(name, namespace)
        await env.wait_for(name, lambda obj: obj is None, namespace=namespace, what="deletion")
        events = plane.get("events", "-n", namespace)["items"]
        assert any(e["involvedObject"]["name"] == name for e in events)


async def test_all_namespaces_mode_needs_no_more_than_the_chart_grants(
    control_plane: ControlPlane,
    helm_binary: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = install_rbac(control_plane, helm_binary, "rbac-cluster")
    await create_update_delete(control_plane, token, (), "rbac-anywhere", tmp_path)
    assert forbidden_records(caplog) == []


async def test_one_namespace_mode_needs_no_more_than_the_chart_grants(
    control_plane: ControlPlane,
    helm_binary: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = install_rbac(control_plane, helm_binary, "rbac-ns", "rbac-team")
    await create_update_delete(control_plane, token, ("rbac-team",), "rbac-team", tmp_path)
    assert forbidden_records(caplog) == []


def test_one_namespace_mode_grants_nothing_outside_it(
    control_plane: ControlPlane, helm_binary: str
) -> None:
    token = install_rbac(control_plane, helm_binary, "rbac-ns2", "rbac-team2")
    control_plane.ensure_namespace("rbac-other")

    def can(*args: str) -> str:
        done = control_plane.kubectl("auth", "can-i", *args, token=token, check=False)
        return done.stdout.strip()

    assert can("patch", "modelendpoints", "-n", "rbac-team2") == "yes"
    assert can("patch", "modelendpoints", "-n", "rbac-other") == "no"
    assert can("list", "modelendpoints", "-A") == "no"
    assert can("create", "events", "-n", "rbac-other") == "no"
    assert can("delete", "modelendpoints", "-n", "rbac-team2") == "no"
    assert can("update", "modelendpoints", "-n", "rbac-team2") == "no"
    assert can("get", "secrets", "-n", "rbac-team2") == "no"
    assert can("list", "customresourcedefinitions") == "yes"
    assert can("create", "customresourcedefinitions") == "no"
