"""``helm install`` and ``helm uninstall`` on a real API server, in the order of docs/install.md.

A fresh control plane (no CRD yet) so that the CRD comes from the chart's ``crds/``. Nothing
runs the operator's pod (no kubelet), which is fine: the objects are what is checked.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import CHART, IMAGE, SCRIPT, ControlPlane
from tests.unit.api.documents import MINIMAL

pytestmark = pytest.mark.envtest

RELEASE, NAMESPACE = "mme-operator", "mme-helm"
CRD = "modelendpoints.mme-operator.io"
FINALIZER = "mme-operator.io/finalizer"


@pytest.fixture(scope="module")
def fresh_plane(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """A second control plane without the CRD (``control_plane`` only to require the build)."""
    plane = ControlPlane.start(tmp_path_factory.mktemp("helm-plane"))
    try:
        yield plane
    finally:
        plane.stop()


def run_helm(helm: str, plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args, "--kubeconfig", str(plane.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_chart_refuses_servers_older_than_its_crd_needs(helm_binary: str) -> None:
    # x-kubernetes-validations with fieldPath and transition rules need Kubernetes 1.28.
    for version, ok in (("1.27.9", False), ("1.28.0", True)):
        done = subprocess.run(
            [
                helm_binary,
                "template",
                RELEASE,
                str(CHART),
                "--kube-version",
                version,
                "--set",
                f"image.repository={IMAGE}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode == 0) is ok, done.stderr
        if not ok:
            assert "incompatible with Kubernetes" in done.stderr


def test_install_then_uninstall_in_the_documented_order(
    fresh_plane: ControlPlane, helm_binary: str, tmp_path: Path
) -> None:
    plane = fresh_plane
    assert plane.kubectl("get", "crd", CRD, check=False).returncode != 0

    # Without an image the chart refuses, saying how to build one: no release, no Deployment
    # (helm has applied crds/ already; a later install keeps that CRD).
    refused = run_helm(
        helm_binary, plane, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace"
    )
    assert refused.returncode != 0 and "image.repository is required" in refused.stderr
    assert "Dockerfile" in refused.stderr
    listed = run_helm(helm_binary, plane, "list", "-n", NAMESPACE, "-q")
    assert listed.returncode == 0 and listed.stdout.strip() == ""
    assert plane.kubectl("get", "deployment", RELEASE, "-n", NAMESPACE, check=False).returncode

    installed = run_helm(
        helm_binary,
        plane,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        f"image.repository={IMAGE}",
    )
    assert installed.returncode == 0, installed.stderr

    # The CRD came from the chart's crds/; the operator's objects exist.
    plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
    deployment = plane.get("deployment", RELEASE, "-n", NAMESPACE)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == RELEASE
    plane.get("serviceaccount", RELEASE, "-n", NAMESPACE)
    plane.get("service", f"{RELEASE}-metrics", "-n", NAMESPACE)
    for kind in ("clusterrole", "clusterrolebinding"):
        plane.get(kind, RELEASE)

    # A ModelEndpoint with the operator's finalizer, as a running operator leaves it.
    doc = {**MINIMAL, "metadata": {"name": "kept", "namespace": NAMESPACE}}
    doc["metadata"]["finalizers"] = [FINALIZER]
    plane.apply([doc])

    # docs/install.md order, step 1: delete the ModelEndpoints while the operator runs. Here no pod
    # runs, so the finalizer stays: exactly the hang the order avoids.
    plane.kubectl("delete", "mep", "kept", "-n", NAMESPACE, "--wait=false")
    stuck = plane.get("mep", "kept", "-n", NAMESPACE)
    assert stuck["metadata"]["deletionTimestamp"]
    assert stuck["metadata"]["finalizers"] == [FINALIZER]
    # docs/install.md's way out when the operator is already gone.
    plane.kubectl(
        "patch",
        "mep",
        "kept",
        "-n",
        NAMESPACE,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    plane.wait_gone("mep", "kept", "-n", NAMESPACE)

    # Step 2: uninstall the operator. Helm keeps the CRD (and so any ModelEndpoints).
    uninstalled = run_helm(helm_binary, plane, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert uninstalled.returncode == 0, uninstalled.stderr
    plane.wait_gone("deployment", RELEASE, "-n", NAMESPACE)
    assert plane.kubectl("get", "clusterrole", RELEASE, check=False).returncode != 0
    plane.get("crd", CRD)

    # Step 3 (only to remove the product for good): delete the CRD yourself.
    plane.kubectl("delete", "crd", CRD)
    plane.wait_gone("crd", CRD)


def servicemonitor_crd() -> Path:
    """The Prometheus Operator's ServiceMonitor CRD (scripts/install-checkers.sh); else skip/fail."""
    done = subprocess.run(
        ["bash", str(SCRIPT.parent / "install-checkers.sh"), "path", "servicemonitor-crd"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = "no ServiceMonitor CRD: run `make checkers`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(done.stdout.strip())


def test_service_monitor_waits_for_the_prometheus_operator(
    fresh_plane: ControlPlane, helm_binary: str
) -> None:
    plane, release, namespace = fresh_plane, "monitored", "mme-monitored"
    values = [
        "--set",
        f"image.repository={IMAGE}",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]
    # No monitoring.coreos.com yet: the install succeeds without the ServiceMonitor, and says so.
    installed = run_helm(
        helm_binary,
        plane,
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        "--skip-crds",
        *values,
    )
    assert installed.returncode == 0, installed.stderr
    assert "so no ServiceMonitor was created" in " ".join(installed.stdout.split())
    plane.get("service", f"{release}-mme-operator-metrics", "-n", namespace)

    # The Prometheus Operator's real CRD arrives; the next upgrade creates the ServiceMonitor,
    # and that CRD's schema accepts it.
    plane.kubectl("apply", "--server-side", "-f", str(servicemonitor_crd()))
    plane.kubectl(
        "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com"
    )
    upgraded = run_helm(
        helm_binary, plane, "upgrade", release, str(CHART), "-n", namespace, "--skip-crds", *values
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "ServiceMonitor was created" not in upgraded.stdout
    monitor = plane.get("servicemonitor", f"{release}-mme-operator", "-n", namespace)
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    uninstalled = run_helm(helm_binary, plane, "uninstall", release, "-n", namespace, "--wait")
    assert uninstalled.returncode == 0, uninstalled.stderr
